#!/usr/bin/env python3
"""Fits erf(x) ~ x * P(x^2) / Q(x^2) on [0, 3.92] (q0 = 1), the approximation the wasm Gelu uses
(src/backends/wasm/assembly/f32-vunary-vbinary.ts, erfv). Linearized least squares, reweighted
towards the largest errors (Sanathanan-Koerner, then Lawson). Prints the largest error in float64
and evaluated in float32, and the coefficients. Usage: python3 scripts/fit-erf.py [P terms] [Q terms]"""
import math
import sys

import numpy as np

NP, NQ = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (7, 6)
xs = np.linspace(0, 3.92, 6000)
ys = np.array([math.erf(v) for v in xs])
t = xs * xs
w = np.ones_like(xs)
qprev = np.ones_like(xs)
for it in range(60):
    A = np.hstack([xs[:, None] * t[:, None] ** np.arange(NP), -(ys[:, None] * t[:, None] ** np.arange(1, NQ))])
    W = w / qprev
    sol, *_ = np.linalg.lstsq(A * W[:, None], ys * W, rcond=None)
    p, q = sol[:NP], np.concatenate([[1.0], sol[NP:]])
    Q = np.polyval(q[::-1], t)
    err = xs * np.polyval(p[::-1], t) / Q - ys
    qprev = Q
    if it > 10:
        w = w * (np.abs(err) / np.abs(err).max() + 1e-3)
        w /= w.mean()
print('largest error, float64:', np.abs(err).max())
f = np.float32
x32 = xs.astype(f)
t32 = x32 * x32
P32 = np.full_like(t32, f(p[-1]))
for c in p[-2::-1]:
    P32 = (P32 * t32 + f(c)).astype(f)
Q32 = np.full_like(t32, f(q[-1]))
for c in q[-2::-1]:
    Q32 = (Q32 * t32 + f(c)).astype(f)
print('largest error, float32:', np.abs((x32 * P32 / Q32).astype(np.float64) - ys).max())
print('P (t^0 first):', [float(f(c)) for c in p])
print('Q (t^0 first):', [float(f(c)) for c in q])
