"""py_bench.py - the Python contender: select.epoll (python3).

    python3 py_bench.py SCENARIO SECONDS

Prints "ns=<per unit> cpu=<per unit> units=<n>" like cbench.  Scenarios:
  ready  epoll.poll(-1, 1024) over 1,000 always-readable sockets
  data   the same plus fcntl.ioctl(FIONREAD) per event
  reg    epoll.register then epoll.unregister of 10,000 descriptors
  reg1   the same for one socket, one call each (scenario 7)
  wake   os.eventfd_write, epoll.poll, os.eventfd_read
"""
import array
import fcntl
import os
import resource
import select
import socket
import sys
import termios
import time

NREADY, EVCAP, NREG = 1000, 1024, 10000


_cpu0 = [0]


def start():
    """Marks the start of the timed stretch; returns the wall clock."""
    _cpu0[0] = time.process_time_ns()
    return time.monotonic_ns()


def report(ns, units):
    cpu = time.process_time_ns() - _cpu0[0]
    print("ns=%.2f cpu=%.2f units=%d" % (ns / units, cpu / units, units))


def pairs(n):
    return [socket.socketpair() for _ in range(n)]


def ready(limit, with_data):
    socks = pairs(NREADY)
    ep = select.epoll()
    for a, b in socks:
        b.send(b"x")
        ep.register(a.fileno(), select.EPOLLIN)
    poll, ioctl, FIONREAD = ep.poll, fcntl.ioctl, termios.FIONREAD
    buf = array.array("i", [0])

    def wait():
        evs = poll(-1, EVCAP)
        if len(evs) != NREADY:
            raise SystemExit("poll returned %d" % len(evs))
        s = 0
        if with_data:
            for fd, _ in evs:
                ioctl(fd, FIONREAD, buf, True)
                s += buf[0]
            if s != NREADY:
                raise SystemExit("FIONREAD sum %d" % s)
        else:
            for fd, _ in evs:
                s += fd
        return len(evs)

    for _ in range(20):
        wait()
    events = 0
    t0 = start()
    while True:
        for _ in range(10):
            events += wait()
        t1 = time.monotonic_ns()
        if t1 - t0 >= limit:
            break
    report(t1 - t0, events)


def reg(limit):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < NREG + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(NREG + 256, hard), hard))
    socks = pairs(NREG // 2)
    fds = [s.fileno() for p in socks for s in p]
    ep = select.epoll()
    register, unregister, IN = ep.register, ep.unregister, select.EPOLLIN

    def cycle():
        for fd in fds:
            register(fd, IN)
        for fd in fds:
            unregister(fd)

    cycle()
    changes = 0
    t0 = start()
    while True:
        cycle()
        changes += 2 * NREG
        t1 = time.monotonic_ns()
        if t1 - t0 >= limit:
            break
    report(t1 - t0, changes)


def reg1(limit):
    a, _b = socket.socketpair()
    fd = a.fileno()
    ep = select.epoll()
    register, unregister, IN = ep.register, ep.unregister, select.EPOLLIN

    def batch():
        for _ in range(1000):
            register(fd, IN)
            unregister(fd)

    batch()
    changes = 0
    t0 = start()
    while True:
        batch()
        changes += 2000
        t1 = time.monotonic_ns()
        if t1 - t0 >= limit:
            break
    report(t1 - t0, changes)


def wake(limit):
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    ep = select.epoll()
    ep.register(efd, select.EPOLLIN)
    write, read, poll = os.eventfd_write, os.eventfd_read, ep.poll

    def batch():
        for _ in range(1000):
            write(efd, 1)
            poll(-1, 1)
            read(efd)

    batch()
    rounds = 0
    t0 = start()
    while True:
        batch()
        rounds += 1000
        t1 = time.monotonic_ns()
        if t1 - t0 >= limit:
            break
    report(t1 - t0, rounds)


def main():
    if len(sys.argv) < 3:
        raise SystemExit("usage: py_bench.py SCENARIO SECONDS")
    scenario, limit = sys.argv[1], int(float(sys.argv[2]) * 1e9)
    if scenario == "ready":
        ready(limit, False)
    elif scenario == "data":
        ready(limit, True)
    elif scenario == "reg":
        reg(limit)
    elif scenario == "reg1":
        reg1(limit)
    elif scenario == "wake":
        wake(limit)
    else:
        raise SystemExit("unknown scenario " + scenario)


if __name__ == "__main__":
    main()
