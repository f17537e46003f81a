"""Where sync rows go: the protocol, the built-in profile store and the HTTP batch destination."""
