#!/usr/bin/env python3
# A/B timing of two binaries run as whole processes, interleaved so that
# machine load affects both alike: docs/PERFORMANCE.md §7.
# usage: abcpu.py N BIN_A BIN_B ARGS...
import subprocess, time, statistics, sys, os
n = int(sys.argv[1]); a = sys.argv[2]; b = sys.argv[3]; args = sys.argv[4:]
res = {a: [], b: []}; wall = {a: [], b: []}
def run(bin):
    t = time.perf_counter()
    p = subprocess.Popen([bin]+args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, ru = os.wait4(p.pid, 0)
    wall[bin].append((time.perf_counter()-t)*1000)
    return (ru.ru_utime+ru.ru_stime)*1000
for _ in range(5): run(a); run(b)
wall = {a: [], b: []}
for i in range(n):
    for bin in ((a, b) if i % 2 == 0 else (b, a)):
        res[bin].append(run(bin))
for bin in (a, b):
    ts = sorted(res[bin]); ws = sorted(wall[bin])
    print(f"{bin}: wall median {statistics.median(ws):.1f} ms (min {ws[0]:.1f}); cpu (user+sys) median {statistics.median(ts):.1f} ms (min {ts[0]:.1f})  {n} runs")
