#!/usr/bin/env python3
# Times whole processes interleaved, so machine load affects each alike:
# every round runs each command once, in an order that rotates by round,
# after 5 warm-up rounds. Wall time is measured around fork/exec/wait; CPU
# is the child's user+sys from wait4. Prints medians, minima and each
# command's ratio to the last one (the comparison program).
#
# usage: interleave.py N DIR 'LABEL::CMD ARGS...' ... 'LABEL::COMPARISON ARGS...'
import os, shlex, statistics, subprocess, sys, time

n, wd, specs = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
cmds = []
for s in specs:
    label, _, cmd = s.partition("::")
    cmds.append((label, shlex.split(cmd)))
wall = {l: [] for l, _ in cmds}
cpu = {l: [] for l, _ in cmds}

def run(label, argv, record):
    t = time.perf_counter()
    p = subprocess.Popen(argv, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    w = (time.perf_counter() - t) * 1000
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{label}: {' '.join(argv)} exited {os.waitstatus_to_exitcode(status)}")
    if record:
        wall[label].append(w)
        cpu[label].append((ru.ru_utime + ru.ru_stime) * 1000)

for i in range(5 + n):
    k = i % len(cmds)
    for label, argv in cmds[k:] + cmds[:k]:
        run(label, argv, i >= 5)

base = cmds[-1][0]
bw, bc = statistics.median(wall[base]), statistics.median(cpu[base])
for label, _ in cmds:
    w, c = sorted(wall[label]), sorted(cpu[label])
    mw, mc = statistics.median(w), statistics.median(c)
    print(f"  {label:<28} wall median {mw:6.2f} ms (min {w[0]:6.2f})  cpu median {mc:6.2f} ms (min {c[0]:6.2f})"
          f"  ratio wall {mw / bw:4.2f}x cpu {mc / bc:4.2f}x")
