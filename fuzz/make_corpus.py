"""Regenerate the seed corpus in fuzz/corpus/<target>/ from a real
in-memory handshake and hand-written frames. Deterministic names
(<kind>-<n>); contents vary with the random keys and CIDs of each run.

    PYTHONPATH=src:. python fuzz/make_corpus.py [target ...]    # default: every target
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from quicfast.config import Config  # noqa: E402
from quicfast.proto.buffer import encode_varint  # noqa: E402
from quicfast.proto.transport_params import TransportParameters, encode_transport_parameters  # noqa: E402
from quicfast.tls import ClientHandshake, Level, ServerHandshake  # noqa: E402
from fuzz.targets import TLS_PARSERS  # noqa: E402
from tests.helpers.engines import client_tls, server_tls  # noqa: E402
from tests.hostile.attacker import frame  # noqa: E402
from tests.hostile.netsim import Net  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def packet_headers():
    seen = []
    net = Net(drop=lambda direction, index, data: seen.append(data) or False)
    net.run_until(lambda: net.client.is_handshake_confirmed, max_time=5)
    for i, data in enumerate(seen[:24]):
        cid_len = 8 if not data[0] & 0x80 else 0
        write("packet_header", f"datagram-{i:02d}", bytes([cid_len]) + data[:256])


def frames():
    cid = bytes(range(8))
    samples = {
        "padding": b"\x00" * 8, "ping": frame(0x01),
        "ack": frame(0x02, 1, 0, 0, 1), "ack-ranges": frame(0x02, 40, 0, 3, 1, 2, 3, 4, 5, 6, 7),
        "ack-ecn": frame(0x03, 1, 0, 0, 0, 1, 2, 3),
        "reset-stream": frame(0x04, 0, 7, 10), "stop-sending": frame(0x05, 0, 7),
        "crypto": frame(0x06, 0, 4, b"\x04\x00\x00\x00"), "new-token": frame(0x07, 3, b"abc"),
        "stream": frame(0x08, 0, b"hello"), "stream-off-len-fin": frame(0x0F, 4, 5, 3, b"abc"),
        "max-data": frame(0x10, 1 << 30), "max-stream-data": frame(0x11, 0, 1 << 20),
        "max-streams": frame(0x12, 200), "max-streams-uni": frame(0x13, 200),
        "data-blocked": frame(0x14, 100), "stream-data-blocked": frame(0x15, 0, 100),
        "streams-blocked": frame(0x16, 100), "streams-blocked-uni": frame(0x17, 100),
        "new-cid": frame(0x18, 1000, 1000, bytes([8]) + cid + bytes(16)),
        "retire-cid": frame(0x19, 0), "path-challenge": frame(0x1A, b"12345678"),
        "path-response": frame(0x1B, b"12345678"), "close": frame(0x1C, 0x0A, 0x08, 3, b"bye"),
        "close-app": frame(0x1D, 7, 3, b"bye"), "handshake-done": frame(0x1E),
        "immediate-ack": frame(0x1F), "datagram": frame(0x30, b"dgram"), "datagram-len": frame(0x31, 3, b"abc"),
        "ack-frequency": frame(0xAF, 1, 10, 25000, 3),
    }
    for name, data in samples.items():
        write("frames", name, data)
    write("frames", "mixed", b"".join(samples[k] for k in ("ping", "max-data", "stream", "path-challenge")))


def transport_params():
    cfgs = [Config(), Config(enable_datagrams=True, max_incoming_streams=7, active_connection_id_limit=8)]
    for i, cfg in enumerate(cfgs):
        params = TransportParameters(
            max_idle_timeout=30000, initial_max_data=cfg.initial_connection_receive_window,
            initial_max_stream_data_bidi_local=1000, initial_max_stream_data_bidi_remote=1000,
            initial_max_stream_data_uni=1000, initial_max_streams_bidi=cfg.max_incoming_streams,
            initial_max_streams_uni=3, active_connection_id_limit=cfg.active_connection_id_limit,
            initial_source_connection_id=bytes(8),
            max_datagram_frame_size=65535 if cfg.enable_datagrams else None)
        write("transport_params", f"client-{i}", b"\x00" + encode_transport_parameters(params, is_client=True))
        params.original_destination_connection_id = bytes(8)
        params.stateless_reset_token = bytes(16)
        write("transport_params", f"server-{i}", b"\x01" + encode_transport_parameters(params, is_client=False))


def tls_messages():
    tp = encode_transport_parameters(TransportParameters(initial_source_connection_id=bytes(8)), is_client=True)
    client = ClientHandshake(client_tls(), "localhost", tp)
    server = ServerHandshake(server_tls(), encode_transport_parameters(
        TransportParameters(initial_source_connection_id=bytes(8), original_destination_connection_id=bytes(8)),
        is_client=False))
    client.on_secret = server.on_secret = lambda *a: None
    client.start()
    messages = []
    for _ in range(4):
        for src, dst in ((client, server), (server, client)):
            for level in Level:
                data = bytes(src.output[level])
                src.output[level].clear()
                if data:
                    pos = 0
                    while pos + 4 <= len(data):
                        n = int.from_bytes(data[pos + 1:pos + 4], "big")
                        messages.append(data[pos:pos + 4 + n])
                        pos += 4 + n
                    dst.receive(level, data)
    by_type = {1: 0, 2: 1, 8: 2, 13: 3, 11: 4, 15: 5, 20: 6, 4: 7}
    for i, msg in enumerate(messages):
        index = by_type.get(msg[0])
        if index is not None:
            assert TLS_PARSERS[index].__name__
            write("tls_messages", f"msg-{i:02d}-type{msg[0]}", bytes([index]) + msg[4:])


def h3_frames():
    import pylsqpack
    from fuzz.h3_frames import encode_sections
    from quicfast.h3.frames import FrameType, StreamType, encode_frame, encode_settings
    from quicfast.proto.buffer import encode_varint as v

    settings = encode_frame(FrameType.SETTINGS, encode_settings({0x01: 4096, 0x07: 16, 0x06: 65536, 0x33: 1}))
    control = v(StreamType.CONTROL) + settings
    request = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"), (b":path", b"/index.html"),
               (b"user-agent", b"quicfast-fuzz")]
    response = [(b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"5")]
    encoder = pylsqpack.Encoder()
    capacity = encoder.apply_settings(4096, 16)
    encoder.encode(0, request)
    enc_req, block_req = encoder.encode(0, request)      # the second time it inserts and refers to the table
    enc_req = capacity + enc_req
    enc_resp, block_resp = pylsqpack.Encoder().encode(0, response)   # static table and literals only
    _, trailers = pylsqpack.Encoder().encode(0, [(b"x-checksum", b"abc")])
    body = encode_frame(FrameType.DATA, b"hello")
    seeds = {
        # flags: bit 0 client, bits 1-2 read size, bit 3 datagrams, bit 4 ASGI request cycle
        "server-control": (0x08, [control + encode_frame(FrameType.GOAWAY, v(8)) + encode_frame(0x21, b"grease")
                                  + encode_frame(FrameType.MAX_PUSH_ID, v(3))
                                  + encode_frame(FrameType.CANCEL_PUSH, v(1)), b""]),
        "client-control": (0x09, [control + encode_frame(FrameType.GOAWAY, v(4)), b""]),
        "request-static": (0x00, [encode_frame(FrameType.HEADERS, pylsqpack.Encoder().encode(0, request)[1]) + body]),
        "request-dynamic": (0x0A, [control, v(StreamType.QPACK_ENCODER) + enc_req,
                                   encode_frame(FrameType.HEADERS, block_req) + body
                                   + encode_frame(FrameType.HEADERS, trailers)]),
        "request-blocked": (0x0C, [control, encode_frame(FrameType.HEADERS, block_req)]),
        "response": (0x0B, [control, v(StreamType.QPACK_ENCODER) + enc_resp,
                            encode_frame(FrameType.HEADERS, block_resp) + body]),
        "response-interim": (0x01, [encode_frame(FrameType.HEADERS, pylsqpack.Encoder().encode(0, [(b":status", b"103")])[1])
                                    + encode_frame(FrameType.HEADERS, block_resp) + body]),
        "decoder-stream": (0x00, [v(StreamType.QPACK_DECODER) + b"\x80\x01", b""]),
        "push-stream": (0x01, [v(StreamType.PUSH) + v(0), b""]),
        "unknown-stream": (0x00, [v(0x21) + b"whatever", b""]),
        "settings-errors": (0x00, [v(0) + encode_frame(FrameType.SETTINGS, v(2) + v(1)), b""]),
        "data-first": (0x00, [body]),
        "control-frame-on-request": (0x00, [encode_frame(FrameType.SETTINGS, b"") + body]),
    }
    for name, (flags, parts) in seeds.items():
        write("h3_frames", name, bytes([flags]) + encode_sections(parts))
        if name.startswith("request"):   # the same through the server's ASGI request cycle
            write("h3_frames", "asgi-" + name, bytes([flags | 0x10]) + encode_sections(parts))


BUILDERS = {"packet_header": packet_headers, "frames": frames, "transport_params": transport_params,
            "tls_messages": tls_messages, "h3_frames": h3_frames}

if __name__ == "__main__":
    for name in sys.argv[1:] or BUILDERS:
        BUILDERS[name]()
    for target in sorted(os.listdir(ROOT)):
        print(target, len(os.listdir(os.path.join(ROOT, target))))
