"""A UDP relay on loopback whose server-facing socket can be swapped for a
new one mid-connection, as a NAT rebinding does (RFC 9000 §9.3)."""

import asyncio
import socket


class Rebinder:
    """A UDP relay that forwards the client's datagrams to the server, from a
    relay socket that can be swapped for a new one (a NAT rebinding)."""

    def __init__(self, server_addr):
        self.server_addr = server_addr
        self.loop = asyncio.get_running_loop()
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.front.setblocking(False)
        self.client_addr = None
        self.back = None
        self.old_backs = []
        self.rebind()
        self.loop.add_reader(self.front.fileno(), self._from_client)

    @property
    def addr(self):
        return self.front.getsockname()

    def rebind(self):
        if self.back is not None:
            self.old_backs.append(self.back)   # keep it open: late server packets are dropped by us
            self.loop.remove_reader(self.back.fileno())
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.back.setblocking(False)
        self.loop.add_reader(self.back.fileno(), self._from_server, self.back)

    def _from_client(self):
        while True:
            try:
                data, self.client_addr = self.front.recvfrom(65536)
            except BlockingIOError:
                return
            self.back.sendto(data, self.server_addr)

    def _from_server(self, sock):
        while True:
            try:
                data, _ = sock.recvfrom(65536)
            except BlockingIOError:
                return
            if self.client_addr is not None:
                self.front.sendto(data, self.client_addr)

    def close(self):
        self.loop.remove_reader(self.front.fileno())
        self.loop.remove_reader(self.back.fileno())
        for s in [self.front, self.back] + self.old_backs:
            s.close()
