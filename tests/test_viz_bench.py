"""kdlab.viz.bench: the bars' colours say what the 95 % interval says, never the mean alone."""

import matplotlib

matplotlib.use("Agg")
from matplotlib.colors import to_hex  # noqa: E402

from kdlab.viz.bench import plot_ablations, plot_vs_kd  # noqa: E402

GREEN, RED, GREY = to_hex("tab:green"), to_hex("tab:red"), to_hex("tab:grey")


def colours(fig):
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    return dict(zip(labels, [to_hex(p.get_facecolor()) for p in ax.patches]))


def test_methods_against_kd_are_coloured_by_their_interval():
    def m(diff, ci):
        return {"mean": 80 + diff, "vs_kd": {"diff": diff, "ci95": ci}}

    result = {"seeds": [0, 1, 2, 3, 4], "methods": {"kd": m(0, [0, 0]), "skd": m(3.0, [1.0, 5.0]),
                                                    "fitnet": m(-20, [-25, -15]), "dkd": m(4.0, [-1.0, 9.0])}}
    c = colours(plot_vs_kd(result))
    assert c == {"skd": GREEN, "dkd": GREY, "fitnet": RED}  # dkd's larger mean gain is not reliable


def test_an_ablation_whose_removal_costs_accuracy_reliably_is_a_part_that_helped():
    def a(delta, ci):
        return {"delta": delta, "ci95": ci, "reference": "no_cascade"}

    result = {"ablations": {"joint_schedule": a(-2.0, [-3.0, -1.0]), "mse_features": a(1.0, [0.5, 1.5]),
                            "identity_pairing": a(-4.0, [-9.0, 1.0])}}
    c = colours(plot_ablations(result))
    assert c == {"joint_schedule (vs no_cascade)": GREEN, "mse_features (vs no_cascade)": RED,
                 "identity_pairing (vs no_cascade)": GREY}


def test_students_of_one_cost_stand_apart_in_the_flops_plot():
    from kdlab.viz.bench import plot_accuracy_flops

    methods = {n: {"mean": 70 + k, "std": 1.0, "flops": 36.3e6} for k, n in enumerate(["scratch", "kd", "skd", "at"])}
    result = {"teacher": {"flops": 370.8e6, "acc": 90.0, "protocol": "pretrained"}, "methods": methods,
              "budget": 10, "seeds": [0]}
    ax = plot_accuracy_flops(result).axes[0]
    xs = [c.get_children()[0].get_xdata()[0] for c in ax.containers]  # one errorbar container per method
    assert len(xs) == 4 and len(set(xs)) == 4  # four distinct x positions
    assert all(36.3 / 10**0.35 < x < 36.3 * 10**0.35 for x in xs)  # all near the students' true FLOPs
