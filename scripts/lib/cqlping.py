#!/usr/bin/env python3
"""Checks that a Cassandra node answers CQL, speaking the native protocol (v4) directly.

Usage: cqlping.py HOST PORT [QUERY]
Sends STARTUP, then QUERY (default: SELECT release_version FROM system.local) and prints
the first column of each row. Exits 0 on success, 1 on any failure (with a reason on stderr).
Standard library only, so scripts/cluster needs no driver to wait for Cassandra.
"""
import socket
import struct
import sys

VERSION = 0x04
OP_ERROR, OP_STARTUP, OP_READY, OP_QUERY, OP_RESULT = 0x00, 0x01, 0x02, 0x07, 0x08
CONSISTENCY_ONE = 0x0001
RESULT_ROWS = 0x0002


def frame(stream, opcode, body):
    return struct.pack(">BBhBi", VERSION, 0, stream, opcode, len(body)) + body


def string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def long_string(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return buf


def read_frame(sock):
    header = recv_exact(sock, 9)
    _version, _flags, _stream, opcode, length = struct.unpack(">BBhBi", header)
    return opcode, recv_exact(sock, length)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def string(self):
        return self.take(self.short()).decode()

    def option(self):
        # Only simple types are expected in the queries this tool runs.
        kind = self.short()
        if kind == 0x0000:
            self.string()
        elif kind in (0x0020, 0x0022):  # list, set
            self.option()
        elif kind == 0x0021:  # map
            self.option()
            self.option()
        elif kind > 0x0022:
            raise ValueError("unsupported column type 0x%04x" % kind)
        return kind


def error_text(body):
    r = Reader(body)
    code = r.int()
    return "error 0x%04x: %s" % (code, r.string())


def query(host, port, cql, timeout=5.0):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        startup = struct.pack(">H", 1) + string("CQL_VERSION") + string("3.0.0")
        sock.sendall(frame(0, OP_STARTUP, startup))
        opcode, body = read_frame(sock)
        if opcode == OP_ERROR:
            raise RuntimeError("STARTUP refused: " + error_text(body))
        if opcode != OP_READY:
            raise RuntimeError("unexpected reply 0x%02x to STARTUP (authentication on?)" % opcode)
        sock.sendall(frame(1, OP_QUERY, long_string(cql) + struct.pack(">HB", CONSISTENCY_ONE, 0)))
        opcode, body = read_frame(sock)
        if opcode == OP_ERROR:
            raise RuntimeError("query failed: " + error_text(body))
        if opcode != OP_RESULT:
            raise RuntimeError("unexpected reply 0x%02x to QUERY" % opcode)
        r = Reader(body)
        if r.int() != RESULT_ROWS:
            return []
        flags, columns = r.int(), r.int()
        if flags & 0x0002:  # has_more_pages: paging state follows
            r.take(r.int())
        if flags & 0x0004:  # no_metadata
            raise RuntimeError("server sent no metadata")
        global_spec = flags & 0x0001
        if global_spec:
            r.string()
            r.string()
        for _ in range(columns):
            if not global_spec:
                r.string()
                r.string()
            r.string()
            r.option()
        rows = []
        for _ in range(r.int()):
            values = []
            for _ in range(columns):
                n = r.int()
                values.append(None if n < 0 else r.take(n))
            rows.append(values)
        return rows


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    cql = argv[3] if len(argv) > 3 else "SELECT release_version FROM system.local"
    try:
        rows = query(argv[1], int(argv[2]), cql)
    except (OSError, RuntimeError, ValueError, struct.error) as e:
        print("cqlping: %s" % e, file=sys.stderr)
        return 1
    for row in rows:
        first = row[0] if row else None
        print("" if first is None else first.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
