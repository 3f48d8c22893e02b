"""The NMN-uptake hypotheses as variants of one model.

The share ``phi`` of NMN use through the direct SLC12A8 route is the only thing that differs:

* ``direct``  — phi = 1 everywhere: intact NMN enters through SLC12A8 (saturable, Na+-dependent);
  extracellular conversion to NR plays no part in NMN use.
* ``via-nr``  — phi = 0 everywhere: NMN is dephosphorylated outside the cell (CD73 and other
  ecto-nucleotidases) to NR, which enters through ENTs and is phosphorylated by NRK1/2.
* ``mixed``   — both routes; phi_system = logistic(mu_phi + tau_phi * z_system) per biological
  system (hierarchical), so the data estimate the share overall and per system.

NR dosing uses ENT + NRK in every variant, so NR evidence informs all three.
"""

from __future__ import annotations

from dataclasses import dataclass

from nadfit.datasets.errors import UserError

#: systems with their own direct-route share under `mixed` (order fixes z_phi's index)
PHI_SYSTEMS = ("grozio2019_cells", "grozio2019_gut", "ratajczak2016", "fletcher2017",
               "grozio2013", "sociali2016", "wilk2020", "human")
#: systems where a CD73 share of extracellular NMN dephosphorylation is needed
CD73_SYSTEMS = ("grozio2013", "sociali2016", "wilk2020")


@dataclass(frozen=True)
class Hypothesis:
    name: str
    title: str
    phi: float | None  # fixed share, or None when estimated
    uses_saturation: bool

    @property
    def extra_parameters(self) -> tuple[str, ...]:
        out = ("k_a",) if self.uses_saturation else ()
        if self.phi is None:
            out += ("mu_phi", "tau_phi")
        return out


HYPOTHESES = {
    "direct": Hypothesis("direct", "Direct uptake of intact NMN through SLC12A8", 1.0, True),
    "via-nr": Hypothesis("via-nr", "Extracellular NMN -> NR (CD73), ENT import, NRK1 phosphorylation",
                         0.0, False),
    "mixed": Hypothesis("mixed", "Both routes, with an estimated share per system", None, True),
}


def get_hypothesis(name: str) -> Hypothesis:
    try:
        return HYPOTHESES[name]
    except KeyError:
        raise UserError(f"unknown hypothesis {name!r}; choose one of {', '.join(HYPOTHESES)}",
                        field="hypothesis") from None
