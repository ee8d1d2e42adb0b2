"""Roles in a comparison: which models are under study and which are the baselines they are held against.

Every result that compares models records its :class:`Roles` (``roles`` in its JSON), and the
report's questions read them instead of guessing from names: "Do unet's gradients vanish?"
asks about the models under study, and numbers of the baselines are the reference.

Who plays which role:

* ``--baseline NAME`` (repeatable) names the baselines explicitly; every ``--model`` is then under study;
* without it, a user model (a SPEC) is under study and the zoo models are its baselines;
* a comparison of zoo models alone is the seed study's: the PackNet family is under study and
  the others (DenseDepth) are the baselines, so its questions keep their wording ("Do PackNet's
  gradients vanish?");
* when that leaves nothing under study (one DenseDepth run), every model is under study.

>>> roles = assign_roles(["examples/unet.py:build", "densedepth"])
>>> [(m.name, m.role, m.display) for m in roles.models]
[('examples/unet.py:build', 'under study', 'unet'), ('densedepth', 'baseline', 'densedepth')]
>>> roles.phrase(UNDER_STUDY), roles.phrase(BASELINE), roles.seed_comparison
('unet', 'DenseDepth', False)
>>> zoo = assign_roles(["packnet_slim_b", "packnet_slim_c", "densedepth"])
>>> zoo.phrase(UNDER_STUDY), zoo.phrase(BASELINE), zoo.seed_comparison
('PackNet', 'DenseDepth', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from probe.errors import ProbeError
from probe.models import MODELS
from probe.models.spec import display_name

UNDER_STUDY = "under study"
BASELINE = "baseline"
#: The family whose models the seed study asks about when only zoo models are compared.
SEED_FAMILY = "packnet"
#: How a zoo family is named in sentences when every model of a role belongs to it.
FAMILY_NAMES = {"packnet": "PackNet", "densedepth": "DenseDepth"}
USER_FAMILY = "user"


@dataclass
class ModelRole:
    """One model of a comparison: its name in the result (the zoo name or SPEC as given), role and display name."""

    name: str
    role: str  # UNDER_STUDY | BASELINE
    display: str  # readable, for sentences: "unet", "packnet_slim_b"
    family: str  # the zoo family ("packnet", "densedepth") or "user"


@dataclass
class Roles:
    """The models of a comparison with their roles, in the order they were given."""

    models: list[ModelRole] = field(default_factory=list)

    def of(self, role: str) -> list[ModelRole]:
        return [m for m in self.models if m.role == role]

    def role_of(self, name: str) -> str | None:
        """The role of the model named ``name`` in the result (None: not part of the comparison)."""
        return next((m.role for m in self.models if m.name == name), None)

    def under_study(self, name: str) -> bool:
        return self.role_of(name) == UNDER_STUDY

    def display(self, name: str) -> str:
        return next((m.display for m in self.models if m.name == name), name)

    def phrase(self, role: str) -> str:
        """The models of ``role`` in a sentence: their zoo family's name when they share one, else their names."""
        members = self.of(role)
        families = {m.family for m in members}
        if members and len(families) == 1 and next(iter(families)) in FAMILY_NAMES:
            return FAMILY_NAMES[next(iter(families))]
        names = [m.display for m in members]
        return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else (names[0] if names else "")

    def plural(self, role: str) -> bool:
        """Whether :meth:`phrase` names several models (a family name counts as one)."""
        return len(self.of(role)) > 1 and self.phrase(role) not in FAMILY_NAMES.values()

    @property
    def seed_comparison(self) -> bool:
        """Zoo models only, the PackNet family under study and nothing else: the seed study's own questions."""
        subjects = self.of(UNDER_STUDY)
        return (
            bool(subjects)
            and all(m.family != USER_FAMILY for m in self.models)
            and all((m.family == SEED_FAMILY) == (m.role == UNDER_STUDY) for m in self.models)
        )

    def evidence(self, name: str) -> dict[str, str]:
        """The role column of an evidence row about model ``name``."""
        return {"role": self.role_of(name) or "not compared"}


def model_family(name: str) -> str:
    """The zoo family of ``name`` (registry metadata), or ``"user"`` for a SPEC outside the zoo."""
    return str(MODELS.entry(name).meta.get("family", "")) if name in MODELS else USER_FAMILY


def assign_roles(
    models: Sequence[str],
    baselines: Sequence[str] = (),
    options: Mapping[str, Mapping[str, Any]] | None = None,
    names: Mapping[str, str] | None = None,
) -> Roles:
    """The roles of ``models`` + ``baselines`` by the rules in the module docstring.

    ``options`` (model -> its model options) supplies ``name=`` display names; ``names`` maps a
    model to the name it has in the result where that differs.  A model given twice is a ProbeError.
    """
    everything = list(models) + list(baselines)
    twice = [m for i, m in enumerate(everything) if m in everything[:i]]
    if twice:
        raise ProbeError(f"--model/--baseline: {twice[0]} is named twice; name each model once")
    entries = [((names or {}).get(m, m), m) for m in everything]
    return roles_for(entries, list(baselines) if baselines else None, options)


def roles_for(
    entries: Sequence[tuple[str, str]],
    baselines: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Roles:
    """Roles of result entries ``(name in the result, model SPEC)``; several entries may share a SPEC.

    ``baselines``: the SPECs that are baselines, every other one under study; None: the default rules.
    """
    specs = list(dict.fromkeys(spec for _, spec in entries))
    if baselines is not None:
        role = {s: BASELINE if s in baselines else UNDER_STUDY for s in specs}
    elif any(model_family(s) == USER_FAMILY for s in specs):
        role = {s: UNDER_STUDY if model_family(s) == USER_FAMILY else BASELINE for s in specs}
    else:
        role = {s: UNDER_STUDY if model_family(s) == SEED_FAMILY else BASELINE for s in specs}
    if baselines is None and UNDER_STUDY not in role.values():
        role = {s: UNDER_STUDY for s in specs}
    return Roles([ModelRole(name, role[spec], _display(spec, options), model_family(spec)) for name, spec in entries])


def _display(spec: str, options: Mapping[str, Mapping[str, Any]] | None) -> str:
    try:
        return display_name(spec, (options or {}).get(spec))
    except ProbeError:  # a name no longer resolvable here (an entry point of another machine): shown as given
        return spec


def baselines_option() -> Any:
    """``--baseline NAME`` (repeatable): the models the ``--model``s are compared against."""
    from probe.options import option

    return option(
        default_factory=list,
        flag="--baseline",
        help="baseline model the --model(s) are compared against (repeat; default: see the README's roles)",
    )


class ModelSelection:
    """What a config naming several models shares: ``models``, ``baselines``, ``model_options``, ``width``.

    The dataclass that mixes this in declares those fields (``baselines_option()``,
    ``probe.options.model_options_option(scoped=True)``); this class checks them and answers
    which models run, with which options, in which role.
    """

    models: list[str]
    baselines: list[str]
    model_options: dict[str, Any]
    width: float

    def compared(self) -> list[str]:
        """Every model that runs: the ``--model``s, then the ``--baseline``s."""
        return list(self.models) + list(self.baselines)

    def options_for(self, model: str) -> dict[str, Any]:
        """The ``--model-option``s that reach ``model``: its own ``MODEL:KEY`` ones and, for a ``--model``, every
        unscoped ``KEY`` (a ``--baseline`` keeps its defaults unless an option names it)."""
        from probe.options import options_for, split_scoped_key

        if model in self.models:
            return options_for(model, self.model_options)
        return {split_scoped_key(k)[1]: v for k, v in self.model_options.items() if split_scoped_key(k)[0] == model}

    def roles(self, names: Mapping[str, str] | None = None) -> Roles:
        return assign_roles(self.models, self.baselines, {m: self.options_for(m) for m in self.compared()}, names)

    def validate_models(self, width: float | None = None) -> None:
        """SPECs parse, no model is named twice, every option reaches a model that takes it (factories are loaded).

        ``width``: what the models are built at, where the config has no ``width`` of its own.
        """
        from probe.models import check_options
        from probe.models.spec import resolve_spec
        from probe.options import check_model_options

        compared = self.compared()
        for name in compared:
            resolve_spec(name)
        assign_roles(self.models, self.baselines)  # a model named twice fails here
        check_model_options(self.model_options, compared)
        for name in compared:
            options = self.options_for(name)
            if "width" in options:
                raise ProbeError("--model-option width: set the channel multiplier with --width")
            try:
                check_options(name, {"width": self.width if width is None else width, **options})
            except ProbeError as exc:
                hint = (
                    "; give an option to one model only as --model-option MODEL:KEY=VALUE" if len(compared) > 1 else ""
                )
                raise ProbeError(f"{exc}{hint}") from None
