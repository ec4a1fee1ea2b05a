"""Figures of code sequences: what a person looks at to see what the manipulator does."""

from __future__ import annotations

import numpy as np

from ned_outlier.reconstruction.params import ParamSchema


def plot_translations(source: np.ndarray, translated: dict[str, np.ndarray], schema: ParamSchema, top: int = 6):
    """A matplotlib figure: one panel per emotion with the `top` expression components that change most across
    the translations, source (dashed) against translated (solid) over the window; codes (T, M + E), mouth first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mouth = len(schema.mouth_names)
    names = schema.mouth_names + schema.expression_names
    change = np.mean([np.abs(codes[:, mouth:] - source[:, mouth:]).mean(axis=0) for codes in translated.values()],
                     axis=0)
    shown = mouth + np.argsort(change)[::-1][:top]
    columns = min(4, len(translated))
    rows = -(-len(translated) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), sharey=True, squeeze=False)
    colours = plt.cm.tab10(np.arange(len(shown)))
    for axis, (emotion, codes) in zip(axes.flat, translated.items()):
        for colour, index in zip(colours, shown):
            axis.plot(source[:, index], "--", color=colour, linewidth=1)
            axis.plot(codes[:, index], color=colour, linewidth=1.5, label=names[index])
        axis.set_title(emotion)
        axis.set_xlabel("frame")
    for axis in axes.flat[len(translated):]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    figure.suptitle("source (dashed) -> translated (solid)")
    figure.tight_layout()
    return figure


def plot_learning_curves(curves: dict[str, tuple[list[float], list[float]]], chance: float, goal: float | None = None):
    """A matplotlib figure of target accuracy against training iterations: curves maps a run's name ("arm/seedN")
    to its (iterations, accuracies), one colour per arm and one line style per seed; chance (and the goal, when
    given) as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(dict.fromkeys(name.split("/")[0] for name in curves))
    seen: dict[str, int] = {}
    figure, axis = plt.subplots(figsize=(8.4, 4.0))
    for name, (iterations, accuracy) in curves.items():
        arm = name.split("/")[0]
        style = ("-", "--", "-.", ":")[seen.get(arm, 0) % 4]
        seen[arm] = seen.get(arm, 0) + 1
        axis.plot(iterations, accuracy, style, marker=".", linewidth=1.2, label=name,
                  color=plt.cm.tab10(arms.index(arm) % 10))
    axis.axhline(chance, color="grey", linestyle="--", linewidth=1, label=f"chance ({chance:.3f})")
    if goal is not None:
        axis.axhline(goal, color="green", linestyle=":", linewidth=1, label=f"goal ({goal:.2f})")
    axis.set_xlabel("training iterations")
    axis.set_ylabel("judge: target accuracy")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: curves fill them
    figure.tight_layout()
    return figure
