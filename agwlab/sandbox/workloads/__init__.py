"""What the sandbox's Pods run: the Anthropic stand-in, the OpenTelemetry collector, the MCP
website fetcher and the lab website (the proxy lives in ``proxy/``)."""

__all__: list[str] = []
