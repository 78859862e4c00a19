"""qlog traces (JSON-SEQ) written per connection by Config.tracer and $QLOGDIR."""

import asyncio
import glob
import os

import quicfast
from quicfast.qlog import FileTracer, read_sqlog
from tests.helpers.engines import client_tls, server_tls


def _transfer(client_config=None, server_config=None):
    async def main():
        transport = await quicfast.Transport.bind("127.0.0.1", 0)
        listener = transport.listen(server_tls(), server_config)
        conn = await quicfast.dial_addr(transport.local_addr, client_tls(), client_config)
        server_conn = await listener.accept()
        stream = conn.open_stream()
        stream.write(b"x" * 100_000)
        stream.close()
        peer = await server_conn.accept_stream()
        assert len(await peer.read_all()) == 100_000
        conn.close_with_error(5, "done")
        await conn.wait_closed()
        await server_conn.wait_closed()
        transport.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_file_tracer_writes_both_vantage_points(tmp_path):
    tracer = FileTracer(str(tmp_path))
    _transfer(quicfast.Config(tracer=tracer), quicfast.Config(tracer=tracer))
    files = sorted(glob.glob(str(tmp_path / "*.sqlog")))
    assert [os.path.basename(f).split("_")[1] for f in files] == ["client.sqlog", "server.sqlog"]
    for path in files:
        records = read_sqlog(path)
        header, events = records[0], records[1:]
        assert header["qlog_format"] == "JSON-SEQ" and header["trace"]["vantage_point"]["type"] in ("client", "server")
        names = [e["name"] for e in events]
        assert names[0] == "connectivity:connection_started"
        assert "transport:parameters_set" in names and "transport:packet_sent" in names
        assert "transport:packet_received" in names and "recovery:metrics_updated" in names
        assert names[-1] == "connectivity:connection_closed"
        times = [e["time"] for e in events]
        assert times == sorted(times)
    client_events = read_sqlog(files[0])[1:]
    sent_stream = sum(f["length"] for e in client_events if e["name"] == "transport:packet_sent"
                      for f in e["data"]["frames"] if f["frame_type"] == "stream")
    assert sent_stream >= 100_000


def test_qlogdir_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("QLOGDIR", str(tmp_path))
    _transfer()
    assert len(glob.glob(str(tmp_path / "*.sqlog"))) == 2
