import logging, re, collections, atexit, jax
jax.config.update("jax_log_compiles", True)
stats = collections.defaultdict(lambda: [0, 0.0])
class H(logging.Handler):
    def emit(self, r):
        m = re.search(r"Finished XLA compilation of (\S+) in ([0-9.e-]+) s", r.getMessage())
        if m: stats[m.group(1)][0] += 1; stats[m.group(1)][1] += float(m.group(2))
logging.getLogger("jax").addHandler(H()); logging.getLogger("jax").setLevel(logging.DEBUG)
@atexit.register
def show():
    for k, (n, t) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:25]: print(f"{t:7.2f} {n:3d} {k}")
