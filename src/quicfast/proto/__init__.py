"""Sans-I/O QUIC protocol engine (RFC 9000, 9001, 9002): no sockets, no clock, no asyncio."""
