"""Statistics of an SHD replica built by ``eventprop data make-shd``, next to SHD's published ones.

Reads ``DIR/shd_train.h5`` and ``DIR/shd_test.h5`` of one or more replica folders and prints,
per folder and split: samples, samples per class and per speaker, spikes per sample (mean,
standard deviation, median, range), the last spike time (how long the samples are, how many
run past the 1 s that the SHD configs crop to) and the mean spike count per channel. With
``--plot FILE`` it draws the spike-count histogram, the per-channel profile, the samples per
class and the last-spike-time histogram (matplotlib) for the first folder.

Usage: ``python benchmarks/shd_replica_stats.py DIR [DIR ...] [--plot docs/shd-replica.png]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from eventprop.data.hdf5 import RawSpikes, read_hdf5

#: SHD as published (Cramer et al. 2020; zenkelab.org): samples per split, speakers held out
PUBLISHED = {"train": 8156, "test": 2264, "test_speakers": "04, 05 (plus 5 % of the others)"}


def summarise(raw: RawSpikes) -> dict[str, object]:
    counts = raw.counts()
    last = np.array(
        [float(raw.times[raw.pointers[i + 1] - 1]) if counts[i] else 0.0 for i in range(len(raw))]
    )
    per_channel = np.bincount(raw.units.astype(np.int64), minlength=700) / len(raw)
    return {
        "samples": len(raw),
        "per_class": np.bincount(raw.labels, minlength=20),
        "speakers": dict(zip(*np.unique(raw.speakers, return_counts=True))),
        "spikes_mean": counts.mean(),
        "spikes_std": counts.std(),
        "spikes_median": float(np.median(counts)),
        "spikes_min": int(counts.min()),
        "spikes_max": int(counts.max()),
        "counts": counts,
        "last_spike": last,
        "past_1s": int((last > 1.0).sum()),
        "per_channel": per_channel,
        "split": raw.attrs.get("split", "?"),
    }


def print_table(name: str, stats: dict[str, dict[str, object]]) -> None:
    print(f"\n## {name}  (split: {stats['train']['split']})\n")
    print("| | train | test |")
    print("|---|---|---|")
    rows = [
        ("samples", "samples", "{}"),
        ("spikes per sample, mean", "spikes_mean", "{:.0f}"),
        ("spikes per sample, std", "spikes_std", "{:.0f}"),
        ("spikes per sample, median", "spikes_median", "{:.0f}"),
        ("spikes per sample, min", "spikes_min", "{}"),
        ("spikes per sample, max", "spikes_max", "{}"),
        ("samples with spikes after 1 s", "past_1s", "{}"),
    ]
    for label, key, fmt in rows:
        print(f"| {label} | {fmt.format(stats['train'][key])} | {fmt.format(stats['test'][key])} |")
    for split in ("train", "test"):
        s = stats[split]
        pc = s["per_class"]
        print(f"\n{split}: per class {pc.min()}-{pc.max()} ({', '.join(map(str, pc))})")
        sp = ", ".join(f"{int(k):02d}: {v}" for k, v in s["speakers"].items())
        print(f"{split}: per speaker {sp}")
        lst = s["last_spike"]
        print(
            f"{split}: last spike {np.percentile(lst, 5):.2f}-{np.percentile(lst, 95):.2f} s "
            f"(5-95 %), max {lst.max():.2f} s"
        )
        prof = s["per_channel"]
        groups = prof.reshape(7, 100).sum(axis=1)
        print(
            f"{split}: spikes per sample in channels 0-99, 100-199, ..., 600-699: "
            + ", ".join(f"{g:.0f}" for g in groups)
        )


def plot(stats: dict[str, dict[str, object]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(10, 7))
    colours = {"train": "tab:blue", "test": "tab:orange"}
    bins = np.linspace(0, 20000, 61)
    for split, s in stats.items():
        c = s["counts"]
        ax[0, 0].hist(c, bins=bins, alpha=0.6, density=True, color=colours[split],
                      label=f"{split} (mean {c.mean():.0f})")  # fmt: skip
        ax[0, 1].plot(s["per_channel"], color=colours[split], lw=0.8, label=split)
        ax[1, 1].hist(s["last_spike"], bins=np.linspace(0, 1.5, 61), alpha=0.6, density=True,
                      color=colours[split], label=split)  # fmt: skip
    ax[0, 0].axvline(8000, color="k", ls="--", lw=1, label="8,000")
    ax[0, 0].set(xlabel="spikes per sample", ylabel="density", title="spikes per sample")
    ax[0, 0].legend(fontsize=8)
    ax[0, 1].set(xlabel="channel (0 = base, highest frequency)", ylabel="spikes per sample",
                 title="mean spikes per channel")  # fmt: skip
    ax[0, 1].legend(fontsize=8)
    x = np.arange(20)
    ax[1, 0].bar(x - 0.2, stats["train"]["per_class"], 0.4, label="train", color=colours["train"])
    ax[1, 0].bar(x + 0.2, stats["test"]["per_class"], 0.4, label="test", color=colours["test"])
    ax[1, 0].set(xlabel="label (0-9 English, 10-19 German)", ylabel="samples",
                 title="samples per class", xticks=x)  # fmt: skip
    ax[1, 0].tick_params(axis="x", labelsize=7)
    ax[1, 0].legend(fontsize=8)
    ax[1, 1].axvline(1.0, color="k", ls="--", lw=1, label="1 s crop")
    ax[1, 1].set(xlabel="time of the last spike (s)", ylabel="density", title="sample length")
    ax[1, 1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="replica folders")
    ap.add_argument("--plot", type=Path, default=None, help="figure of the first folder")
    args = ap.parse_args()
    print(f"published SHD: {PUBLISHED}")
    first = None
    for folder in args.folders:
        stats = {s: summarise(read_hdf5(folder / f"shd_{s}.h5")) for s in ("train", "test")}
        print_table(str(folder), stats)
        first = first or (folder, stats)
    if args.plot and first:
        folder, stats = first
        plot(stats, f"SHD replica ({folder.name}, split '{stats['train']['split']}')", args.plot)


if __name__ == "__main__":
    main()
