"""ipywidgets shells over agwlab's plain functions: key entry, model picker, request tester, MCP explorer.

Each widget only collects input and calls a plain function (:func:`agwlab.llm.chat`,
:mod:`agwlab.mcp`), so everything a widget does can also run headless, as the notebooks
do right after each widget. Where widgets cannot render (a plain Python shell), each
function prints what to do instead and returns ``None``.

The key box never keeps the key in widget state: the value is read, kept in the kernel
(:func:`agwlab.secrets.accept_key`) and the box is cleared at once.
"""

from __future__ import annotations

import html
import json
import os
from typing import TYPE_CHECKING, Any

from . import llm
from . import models as _models
from .checks import show
from .secrets import InvalidKey, accept_key, forget_entered_key, mask, redact, use_sandbox_key

if TYPE_CHECKING:
    import ipywidgets as w

    from .lab import Lab

__all__ = [
    "agent_box",
    "api_key_box",
    "can_render",
    "mcp_explorer",
    "model_picker",
    "request_tester",
]



def can_render() -> bool:
    """True inside a Jupyter kernel, where widgets can be displayed."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def _widgets() -> Any:
    import ipywidgets

    return ipywidgets


def api_key_box(lab: Lab | None = None) -> w.Widget | None:
    """A Password box for the Anthropic key; ``ANTHROPIC_API_KEY`` takes precedence.

    The typed key is kept in this kernel only, the box is cleared straight away, and the
    key is only ever shown masked. Something that is not shaped like a key is refused with a
    one-line reason (the key kept before stays); a pasted ``Bearer sk-ant-…`` is taken
    without its ``Bearer``. In the sandbox the button goes back to the sandbox key (even when
    the Secret holds another); on a cluster it forgets a typed key (the Secret's stays in use).

    Returns:
        The widget, or ``None`` where widgets cannot render (a hint is printed instead).
    """
    env = os.environ.get("ANTHROPIC_API_KEY", "").strip()
    target = lab.target if lab is not None else "sandbox"
    if env:
        message = f"Using ANTHROPIC_API_KEY from the environment ({mask(env)}); it wins over the key box."
    elif target == "sandbox":
        message = "No ANTHROPIC_API_KEY set: the sandbox key will be used unless you enter one."
    else:
        message = "Enter your Anthropic API key (it stays in this kernel and is shown masked)."
    if not can_render():
        print(message if env else message + " Outside Jupyter: set ANTHROPIC_API_KEY instead.")
        return None
    ipw = _widgets()
    status = ipw.HTML(html.escape(message))
    if env:
        return status
    box = ipw.Password(placeholder="sk-ant-…", description="API key", continuous_update=False)
    back = ipw.Button(description="Use the sandbox key" if target == "sandbox" else "Forget the typed key",
                      icon="undo", disabled=True)

    def taken(change: dict[str, Any]) -> None:
        value = str(change.get("new") or "")
        if not value:
            return
        box.value = ""  # never leave the key in widget state
        try:
            key = accept_key(value)
        except InvalidKey as exc:
            status.value = html.escape(str(exc))
            return
        if key is not None:
            back.disabled = False
            status.value = html.escape(
                f"Key kept for this session: {key.masked}. Run the Secret step (step 4) to use it."
            )

    def forget(_: Any) -> None:
        if target == "sandbox":
            use_sandbox_key()
            status.value = html.escape("Back to the sandbox key. Run the Secret step (step 4) to use it.")
        else:
            forget_entered_key()
            status.value = html.escape(
                "Typed key forgotten. The key already in the Secret stays in use until you enter another."
            )
        back.disabled = True

    box.observe(taken, names="value")
    back.on_click(forget)
    return ipw.VBox([ipw.HBox([box, back]), status])


def _model_choices(lab: Lab | None, default: str | None) -> tuple[list[tuple[str, str]], str, str]:
    """(dropdown options, starting value, where the list came from)."""
    found = _models.available(lab) if lab is not None else _models.fallback("no lab given to ask the provider")
    value = default or (_models.backend_model(lab) if lab is not None else None) or _models.DEFAULT_MODEL
    options = found.options()
    if value not in found.ids:
        options.insert(0, (_models.Model(value).label(), value))
    return options, value, found.note


def model_picker(lab: Lab | None = None, default: str | None = None) -> w.Widget | None:
    """A dropdown of the models the provider offers (``GET /v1/models`` with your key).

    The list comes from :func:`agwlab.models.available` (the lab's short list when the
    provider cannot be asked; a line above the dropdown says which); retired models are
    marked. The value starts at ``default``, else the model the lab's backend pins now (so
    re-running the notebook keeps your choice), else :data:`agwlab.models.DEFAULT_MODEL`.
    A model pinned on the AgentgatewayBackend wins over the one a request asks for.
    """
    options, value, note = _model_choices(lab, default)
    if not can_render():
        print(f"{note} Default {value}.\n" + "\n".join(f"  {label}" for label, _ in options))
        return None
    print(note)
    ipw = _widgets()
    return ipw.Dropdown(options=options, value=value, description="model", layout=ipw.Layout(width="60%"))


def request_tester(lab: Lab, *, prompt: str = "", system: str = "") -> w.Widget | None:
    """Prompt, system prompt, model and stream on/off → answer, tokens, latency and trace id.

    Each press of *Send* calls :func:`agwlab.llm.chat` and shows its result (redacted).
    """
    if not can_render():
        print("request tester: call agwlab.llm.chat(lab, prompt, system=..., stream=...) instead")
        return None
    ipw = _widgets()
    prompt_box = ipw.Textarea(
        value=prompt, description="prompt", layout=ipw.Layout(width="95%", height="70px")
    )
    system_box = ipw.Text(value=system, description="system", layout=ipw.Layout(width="95%"))
    options, value, _ = _model_choices(lab, None)
    model = ipw.Dropdown(options=options, value=value, description="model")
    stream = ipw.Checkbox(value=False, description="stream")
    send = ipw.Button(description="Send", button_style="primary", icon="paper-plane")
    out = ipw.Output()

    def on_send(_: Any) -> None:
        send.disabled = True
        out.clear_output()
        with out:
            try:
                result = llm.chat(
                    lab,
                    prompt_box.value,
                    system=system_box.value or None,
                    model=model.value,
                    stream=stream.value,
                )
                show(result)
            except Exception as exc:  # show, don't crash the widget
                print(redact(f"{type(exc).__name__}: {exc}"))
            finally:
                send.disabled = False

    send.on_click(on_send)
    return ipw.VBox([prompt_box, system_box, ipw.HBox([model, stream, send]), out])


def mcp_explorer(lab: Lab) -> w.Widget | None:
    """List the tools behind the Gateway's ``/mcp`` route and call one, over :mod:`agwlab.mcp`."""
    if not can_render():
        print("MCP explorer: use agwlab.mcp (initialize, list_tools, call_tool) instead")
        return None
    from . import mcp

    ipw = _widgets()
    list_button = ipw.Button(description="List tools", icon="list")
    tool = ipw.Dropdown(options=[], description="tool")
    # offline, the sandbox's own small website is the page there is to fetch
    page = "http://lab-website.agwlab-system.svc.cluster.local/" if lab.target == "sandbox" else "https://example.com"
    args = ipw.Textarea(
        value=json.dumps({"url": page}),
        description="arguments",
        layout=ipw.Layout(width="95%", height="50px"),
    )
    call_button = ipw.Button(description="Call", button_style="primary", icon="play", disabled=True)
    out = ipw.Output()
    url = lab.gateway_url("/mcp")

    def on_list(_: Any) -> None:
        out.clear_output()
        with out:
            try:
                tools = mcp.list_tools(url)
                tool.options = [t.name for t in tools]
                tool.value = tool.options[0] if tool.options else None
                call_button.disabled = not tool.options
                show(tools)
            except Exception as exc:
                print(redact(f"{type(exc).__name__}: {exc}"))

    def on_call(_: Any) -> None:
        out.clear_output()
        with out:
            try:
                arguments = json.loads(args.value or "{}")
                show(mcp.call_tool(url, tool.value, arguments))
            except Exception as exc:
                print(redact(f"{type(exc).__name__}: {exc}"))

    list_button.on_click(on_list)
    call_button.on_click(on_call)
    return ipw.VBox([ipw.HBox([list_button, tool]), args, call_button, out])


def agent_box(lab: Lab, *, question: str = "", max_steps: int = 6) -> w.Widget | None:
    """Ask your own question to the agent loop (:func:`agwlab.agent.run`) and see its transcript."""
    if not can_render():
        print("agent: call agwlab.agent.run(lab, question, max_steps=...) and print its transcript instead")
        return None
    from . import agent

    ipw = _widgets()
    box = ipw.Textarea(value=question, description="question", layout=ipw.Layout(width="95%", height="60px"))
    steps = ipw.IntSlider(value=max_steps, min=1, max=12, description="max steps")
    choice = ipw.Dropdown(options=["auto", "required", "none"], value="auto", description="tool_choice")
    go = ipw.Button(description="Run", button_style="primary", icon="play")
    out = ipw.Output()

    def on_run(_: Any) -> None:
        go.disabled = True
        out.clear_output()
        with out:
            try:
                show(agent.run(lab, box.value, max_steps=steps.value, tool_choice=choice.value))
            except Exception as exc:  # show, don't crash the widget
                print(redact(f"{type(exc).__name__}: {exc}"))
            finally:
                go.disabled = False

    go.on_click(on_run)
    return ipw.VBox([box, ipw.HBox([steps, choice, go]), out])
