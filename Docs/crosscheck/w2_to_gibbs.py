"""W2 in z = (s, r) between a noisy-SGD cloud and a reduced grid density (CrossCheck.md 8).

    python3 Docs/crosscheck/w2_to_gibbs.py WASSERSTEIN SGD_DIR GRID_DIR

SGD_DIR holds `wasserstein sgd`'s particles_final.npy (M x d, fixed second layer, teacher e_1);
GRID_DIR holds `wasserstein reduced`'s grid.json, density_final.npy and density_stationary.npy.
Each particle w maps to z = (s, r) = (w_1, |w_2..d|); by Theory.md 7.4 the exact W2 in z between
that cloud and a reduced density is the W2 between the cloud's symmetrisation and the full law.
Prints W2 to the final grid state and to the Gibbs point, and the floor: the W2 between M exact
samples of the Gibbs point (nodes drawn by mass, uniform within their cell, seed 0) and the point itself.
"""
import json, os, subprocess, sys, tempfile
import numpy as np

def nodes(grid_dir, name):
    g = json.load(open(os.path.join(grid_dir, "grid.json")))
    s, r = (np.array(a) for a in g["axes"])
    mass = np.load(os.path.join(grid_dir, name)).ravel() * g["cell_volume"]
    ss, rr = np.meshgrid(s, r, indexing="ij")
    pts = np.stack([ss.ravel(), rr.ravel()], axis=1)
    keep = mass > 1e-14 * mass.sum()
    return pts[keep], mass[keep] / mass[keep].sum(), (s[1] - s[0], r[1] - r[0])

def w2(binary, x, y, yw, tmp):
    np.save(os.path.join(tmp, "x.npy"), x)
    np.save(os.path.join(tmp, "y.npy"), y)
    np.save(os.path.join(tmp, "yw.npy"), yw)
    out = subprocess.run([binary, "distance", os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy"),
                          "--y-weights", os.path.join(tmp, "yw.npy"), "--normalize", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["w2"]

binary, sgd_dir, grid_dir = sys.argv[1:4]
w = np.load(os.path.join(sgd_dir, "particles_final.npy"))
z = np.stack([w[:, 0], np.linalg.norm(w[:, 1:], axis=1)], axis=1)
with tempfile.TemporaryDirectory() as tmp:
    final, final_w, _ = nodes(grid_dir, "density_final.npy")
    gibbs, gibbs_w, (hs, hr) = nodes(grid_dir, "density_stationary.npy")
    rng = np.random.default_rng(0)
    pick = rng.choice(len(gibbs), size=len(z), p=gibbs_w)
    sample = gibbs[pick] + (rng.random((len(z), 2)) - 0.5) * [hs, hr]
    print(f"M = {len(z)}: W2(SGD, grid JKO at T) = {w2(binary, z, final, final_w, tmp):.4f}, "
          f"W2(SGD, Gibbs) = {w2(binary, z, gibbs, gibbs_w, tmp):.4f}, "
          f"floor W2(M samples of Gibbs, Gibbs) = {w2(binary, sample, gibbs, gibbs_w, tmp):.4f}")
