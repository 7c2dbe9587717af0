"""Draws the soak samples (scripts/soak) and prints the slope of each series
over the last 10 minutes. Usage: soak_chart.py SAMPLES.tsv OUT.png"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def slope(xs, ys):
    """Least-squares slope of ys against xs."""
    n = len(xs)
    if n < 2:
        return 0.0
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var if var else 0.0


def main():
    rows = [row for row in csv.reader(open(sys.argv[1]), delimiter="\t") if row and row[1] != "seconds"]
    minutes = [int(row[1]) / 60 for row in rows]
    series = {
        "RSS (MiB)": [int(row[2]) for row in rows],
        "open files": [int(row[3]) for row in rows],
        "data dir (MiB)": [int(row[4]) for row in rows],
        "p99 ingest → frame (ms)": [int(row[5]) for row in rows],
    }
    figure, axes = plt.subplots(len(series), 1, figsize=(9, 10), sharex=True)
    last = [i for i, minute in enumerate(minutes) if minute >= minutes[-1] - 10]
    for axis, (name, values) in zip(axes, series.items()):
        axis.plot(minutes, values)
        axis.set_ylabel(name)
        axis.grid(True, alpha=0.3)
        per_minute = slope([minutes[i] for i in last], [values[i] for i in last])
        print(f"{name}: last {values[-1]}, slope over the last 10 min {per_minute:+.2f} per minute")
    axes[-1].set_xlabel("minutes")
    axes[0].set_title("deck serve soak: demo source, --retention 10m, sockets connected")
    figure.tight_layout()
    figure.savefig(sys.argv[2], dpi=90)


main()
