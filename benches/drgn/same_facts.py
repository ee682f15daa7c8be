"""drgn computing what `crashdeck report --json` reports, for a side-by-side
cost figure (benches/drgn/side_by_side.sh; issue 19: crashdeck at most 0.1x
drgn's CPU for the same facts).

usage: drgn -q -c VMCORE -s VMLINUX benches/drgn/same_facts.py > facts.json

The fixtures' oracle (CRASHDECK_FIXTURES/tools/oracle.py: summary, tasks with
RSS and VSZ, zones, meminfo, the log and the panicking task's backtrace) is
run first, in this process; then what the report has beyond it and drgn has
helpers for: every SLUB cache's slabs and objects as crash's `kmem -s` counts
them (`slab_cache_usage`: the node partial lists, the per-CPU slabs and their
lockless freelists) and every task's backtrace. The report's lock graph,
memory breakdown and diagnosis have no drgn helper and are left out: the
figure is drgn doing less than crashdeck, not more.
"""
import contextlib
import io
import json
import os
import sys

from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.slab import for_each_slab_cache, slab_cache_usage

prog = prog  # noqa: F821  (given by drgn)

here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.environ.get("CRASHDECK_FIXTURES", os.path.join(here, "..", "..", "..", "shared", "fixtures"))
oracle = os.path.join(fixtures, "tools", "oracle.py")
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    g = {"prog": prog, "__name__": "oracle"}
    exec(compile(open(oracle).read(), oracle, "exec"), g)
out = json.loads(buf.getvalue())


def slabs():
    rows = []
    for s in for_each_slab_cache(prog):
        u = slab_cache_usage(s)
        rows.append({
            "name": s.name.string_().decode(errors="replace"),
            "slabs": u.num_slabs,
            "total": u.num_objs,
            "allocated": u.num_objs - u.free_objs,
        })
    return rows


def backtraces():
    traces = []
    for t in for_each_task(prog):
        try:
            frames = [f.name for f in prog.stack_trace(t)]
        except Exception as e:  # a task whose stack cannot be read
            frames = [f"{type(e).__name__}: {e}"]
        traces.append({"pid": t.pid.value_(), "frames": frames})
    return traces


out["slabs"] = g["attempt"]("slabs", slabs)
out["backtraces"] = g["attempt"]("backtraces", backtraces)
json.dump(out, sys.stdout, indent=1)
print()
