"""Baseline: Python's socketserver echo, as its documentation writes it.

    python3 echo_server.py KIND ADDR

KIND is threading-tcp (ThreadingTCPServer), forking-tcp (ForkingTCPServer),
udp (UDPServer) or threading-unix (ThreadingUnixStreamServer); ADDR is
HOST:PORT (port 0: the kernel chooses) or a socket path. The first stdout
line is `listening on ADDR`, as for every server of the benchmark. SIGTERM
ends it.
"""

import os
import signal
import socketserver
import sys

BUF = 16 * 1024  # the buffer echo_server's threading handler uses


class StreamEcho(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(BUF)
            if not data:
                return
            self.request.sendall(data)


class DatagramEcho(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)


class ThreadingTCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class ForkingTCP(socketserver.ForkingTCPServer):
    allow_reuse_address = True


class ThreadingUnix(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    kind, addr = sys.argv[1], sys.argv[2]
    if kind == "threading-unix":
        if os.path.exists(addr):
            os.unlink(addr)  # the benchmark owns its socket paths
        server = ThreadingUnix(addr, StreamEcho)
        shown = addr
    else:
        host, port = addr.rsplit(":", 1)
        classes = {
            "threading-tcp": (ThreadingTCP, StreamEcho),
            "forking-tcp": (ForkingTCP, StreamEcho),
            "udp": (socketserver.UDPServer, DatagramEcho),
        }
        if kind not in classes:
            sys.exit(f"unknown kind {kind}")
        cls, handler = classes[kind]
        server = cls((host, int(port)), handler)
        shown = "%s:%d" % server.server_address[:2]
    # SIGTERM ends the process at once; the driver only needs it gone.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"listening on {shown}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
