#!/usr/bin/env python3
"""Capture golden reply frames from a real ZooKeeper server.

Usage: capture.py HOST:PORT OUT_DIR

Talks raw jute over a socket (no client library, so every byte is ours or the server's),
and writes one `<name>.hex` file per captured frame: `#` comment lines saying what was
sent, then the reply frame (length prefix included) as hex, 32 bytes a line.

Run it against a freshly started, empty server: the tests assume the node names and the
order of operations below, not particular zxids or times. See ../golden/README.md.
"""
import socket
import struct
import sys
import os


def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)
def b(v): return struct.pack(">?", v)
def buf(v): return i32(len(v)) + v
def ustr(s): return buf(s.encode())
OPEN_ACL = i32(1) + i32(31) + ustr("world") + ustr("anyone")


def frame(payload): return i32(len(payload)) + payload


class Conn:
    def __init__(self, addr, read_only_byte=True):
        self.s = socket.create_connection(addr, timeout=5)
        req = i32(0) + i64(0) + i32(30000) + i64(0) + buf(b"\0" * 16)
        if read_only_byte:
            req += b(False)
        self.s.sendall(frame(req))
        self.connect_reply = self.read_frame()
        self.xid = 0

    def read_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                raise EOFError("connection closed")
            out += chunk
        return out

    def read_frame(self):
        head = self.read_exact(4)
        return head + self.read_exact(struct.unpack(">i", head)[0])

    def send(self, op, body, xid=None):
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.s.sendall(frame(i32(xid) + i32(op) + body))

    def call(self, op, body, xid=None):
        self.send(op, body, xid)
        return self.read_frame()

    def closed_after(self):
        """True if the server closes the connection (reads EOF) within the timeout."""
        try:
            self.s.settimeout(2)
            return self.s.recv(1, socket.MSG_PEEK) == b""
        except (socket.timeout, ConnectionResetError):
            return False


def create(path, data=b"", flags=0): return ustr(path) + buf(data) + OPEN_ACL + i32(flags)
def path_watch(path, watch=False): return ustr(path) + b(watch)
def multi_header(op, done=False, err=-1): return i32(op) + b(done) + i32(err)
DONE = multi_header(-1, True, -1)


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    addr = (host, int(port))
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)

    def save(name, what, data):
        with open(os.path.join(out, name + ".hex"), "w") as f:
            f.write("# captured from Apache ZooKeeper 3.8.0 (Debian 3.8.0-11+deb12u2)\n")
            for line in what.strip().splitlines():
                f.write("# " + line + "\n")
            h = data.hex()
            for i in range(0, len(h), 64):
                f.write(h[i:i + 64] + "\n")

    old = Conn(addr, read_only_byte=False)
    save("connect_response_old_client", "ConnectRequest without the readOnly byte (44-byte frame)",
         old.connect_reply)
    c = Conn(addr)
    save("connect_response", "ConnectRequest with readOnly=false (45-byte frame)", c.connect_reply)

    save("create_reply", "xid 1 create /golden data 'hello' OPEN_ACL persistent",
         c.call(1, create("/golden", b"hello")))
    save("create2_reply", "xid 2 create2 /golden/c1 data 'x' OPEN_ACL ephemeral",
         c.call(15, create("/golden/c1", b"x", 1)))
    save("get_data_reply", "xid 3 getData /golden watch=false", c.call(4, path_watch("/golden")))
    save("error_no_node_reply", "xid 4 getData /missing watch=false",
         c.call(4, path_watch("/missing")))
    save("exists_missing_reply", "xid 5 exists /watched watch=true",
         c.call(3, path_watch("/watched", True)))
    # The create fires the exists watch: the notification comes before the create's reply.
    c.send(1, create("/watched"))
    save("notification", "NodeCreated /watched, fired by xid 6 create /watched", c.read_frame())
    save("create_watched_reply", "xid 6 create /watched (after its notification)", c.read_frame())
    save("get_children2_reply", "xid 7 getChildren2 /golden watch=false",
         c.call(12, path_watch("/golden")))
    save("exists_reply", "xid 8 exists /golden watch=false", c.call(3, path_watch("/golden")))
    save("set_data_reply", "xid 9 setData /golden data 'world' version 0",
         c.call(5, ustr("/golden") + buf(b"world") + i32(0)))
    save("get_acl_reply", "xid 10 getACL /golden", c.call(6, ustr("/golden")))
    save("get_children_reply", "xid 11 getChildren / watch=false", c.call(8, path_watch("/")))

    ops = (multi_header(1) + create("/m1", b"a")
           + multi_header(5) + ustr("/golden") + buf(b"m") + i32(-1)
           + multi_header(13) + ustr("/golden") + i32(2)
           + multi_header(2) + ustr("/m1") + i32(-1)
           + multi_header(15) + create("/m2", b"b")
           + DONE)
    save("multi_success_reply",
         "xid 12 multi [create /m1, setData /golden v-1, check /golden v2, delete /m1, create2 /m2]",
         c.call(14, ops))
    ops = (multi_header(1) + create("/m3")
           + multi_header(2) + ustr("/nope") + i32(-1)
           + multi_header(5) + ustr("/golden") + buf(b"z") + i32(-1)
           + DONE)
    save("multi_failure_reply", "xid 13 multi [create /m3, delete /nope, setData /golden]",
         c.call(14, ops))
    ops = (multi_header(8) + path_watch("/golden")
           + multi_header(4) + path_watch("/golden")
           + multi_header(4) + path_watch("/nope")
           + DONE)
    save("multi_read_reply", "xid 14 multiRead [getChildren /golden, getData /golden, getData /nope]",
         c.call(22, ops))
    save("sync_reply", "xid 15 sync /golden", c.call(9, ustr("/golden")))
    save("get_all_children_number_reply", "xid 16 getAllChildrenNumber /",
         c.call(104, ustr("/")))
    save("get_ephemerals_reply", "xid 17 getEphemerals /", c.call(103, ustr("/")))
    save("who_am_i_reply", "xid 18 whoAmI", c.call(107, b""))
    save("delete_no_node_reply", "xid 19 delete /nope version -1",
         c.call(2, ustr("/nope") + i32(-1)))
    save("ping_reply", "xid -2 ping", c.call(11, b"", xid=-2))
    save("auth_reply", "xid -4 auth digest user:pw", c.call(100, i32(0) + ustr("digest") + buf(b"user:pw"), xid=-4))
    # /golden changed after zxid 0, so its data watch fires at once, before the reply.
    c.send(101, i64(0) + i32(1) + ustr("/golden") + i32(0) + i32(0), xid=-8)
    save("set_watches_notification",
         "NodeDataChanged /golden, fired by xid -8 setWatches relZxid 0 dataWatches [/golden]",
         c.read_frame())
    save("set_watches_reply", "xid -8 setWatches relZxid 0, one data watch on /golden",
         c.read_frame())
    save("add_watch_reply", "xid 20 addWatch /golden mode 1", c.call(106, ustr("/golden") + i32(1)))
    save("marshalling_error_reply", "xid 21 getData with a truncated body (path length 50, 3 bytes)",
         c.call(4, i32(50) + b"abc"))
    print("connection open after a bad body:", not c.closed_after())
    # Closing deletes the ephemeral /golden/c1, which fires the recursive watch first.
    c.send(-11, b"")
    save("close_session_notification",
         "NodeDeleted /golden/c1 (persistent recursive watch), fired by xid 22 closeSession",
         c.read_frame())
    save("close_session_reply", "xid 22 closeSession", c.read_frame())
    print("closed after closeSession:", c.closed_after())

    u = Conn(addr)
    save("unimplemented_reply", "xid 1 opcode 999 (undefined)", u.call(999, b""))
    print("closed after unimplemented:", u.closed_after())

    old.call(-11, b"")


if __name__ == "__main__":
    main()
