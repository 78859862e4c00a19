"""quicfast: QUIC for Python with a Cython/C engine and a quic-go-style asyncio API."""
