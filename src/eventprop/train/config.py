"""The experiment configuration: a pydantic schema, YAML files, ``--set`` overrides.

Why a schema: a training run is only reproducible and comparable when everything that shapes
it is written down, and a typo in a YAML file must fail before an hour of training, not be
silently ignored. Every section forbids unknown keys and checks types strictly (a string is
never coerced into a number); :class:`ConfigError` names the dotted key path, what was
expected and what was found.

Sources, merged in this order (later wins): the schema defaults, a config file (a path or a
built-in name such as ``yinyang`` or ``shd``; a file may start from another with
``extends: NAME_OR_PATH``), then ``KEY=VALUE`` overrides whose values are parsed as YAML
(``optim.lr=5e-4``, ``model.hidden=[512]``, ``data.delay=null``).

The built-in configs ship inside the package (``eventprop/train/configs/*.yaml``) so that an
installed ``eventprop`` finds them; the repository's ``configs/`` holds identical copies for
reading and editing, and a test keeps the two in step.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "BUILTIN_CONFIGS",
    "BPTTConfig",
    "ConfigError",
    "DataConfig",
    "DelayConfig",
    "ExperimentConfig",
    "InitConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "RandmanConfig",
    "RegularizerConfig",
    "RewireConfig",
    "RunConfig",
    "ScheduleConfig",
    "SeedsConfig",
    "TausConfig",
    "TrainConfig",
    "ValidationConfig",
    "YinYangConfig",
    "apply_overrides",
    "builtin_config_path",
    "dump_config",
    "list_builtin_configs",
    "load_config",
    "parse_override",
    "read_yaml",
    "resolve_config_source",
    "validate_config",
]


class ConfigError(ValueError):
    """An invalid configuration; ``str()`` lists every problem with its dotted key path."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"invalid configuration{f' ({source})' if source else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


# --------------------------------------------------------------------------------------------
# YAML: PyYAML follows YAML 1.1, where ``5e-4`` (no dot) is a *string*. A config full of
# learning rates needs it to be a float, so the loader gets YAML 1.2's float rule.
# --------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe loader that reads ``1e-3`` and ``5E+2`` as floats (YAML 1.2 behaviour)."""


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


#: most characters of one YAML document (a config is a few KB; this refuses a stray data file)
MAX_YAML_CHARS = 1_000_000
#: most values one YAML document may expand to, every alias counted at each use: a config has
#: a few hundred, while nested anchors of a 1 KB "alias bomb" expand to a billion
MAX_YAML_VALUES = 20_000


def _expanded_size(node: yaml.Node, limit: int) -> int:
    """Values ``node`` expands to (aliases counted at every use), stopping early past ``limit``.

    Iterative with a memo per node, so a shared subtree costs one visit and a deep document no
    recursion; a node that contains itself (``&a [*a]``) counts as unbounded.
    """
    memo: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        cur, done = stack.pop()
        key = id(cur)
        if done:
            on_path.discard(key)
            total = 1
            for child in _children(cur):
                total += memo[id(child)]
                if total > limit:
                    break
            memo[key] = min(total, limit + 1)
            if memo[key] > limit:
                return limit + 1
            continue
        if key in memo:
            continue
        if key in on_path:
            return limit + 1  # recursive anchor: infinite
        on_path.add(key)
        stack.append((cur, True))
        for child in _children(cur):
            if id(child) in on_path:
                return limit + 1
            if id(child) not in memo:
                stack.append((child, False))
    return memo[id(node)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def read_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML text with the config loader; syntax errors name the source and line.

    The document is composed first and its expanded size checked before any Python object is
    built, so an alias bomb is refused in milliseconds instead of filling the memory.
    """
    if len(text) > MAX_YAML_CHARS:
        raise ConfigError(
            [
                f"YAML document of {len(text)} characters, more than {MAX_YAML_CHARS}: "
                "a config is a few KB; check that this is the config file"
            ],
            source,
        )
    loader = None
    try:
        loader = _Loader(text)  # the reader rejects control characters already here
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, MAX_YAML_VALUES) > MAX_YAML_VALUES:
            raise ConfigError(
                [
                    f"YAML document expands to more than {MAX_YAML_VALUES} values (anchors and "
                    "aliases counted at every use, or an alias inside its own anchor): a "
                    "config has a few hundred; remove the nested aliases"
                ],
                source,
            )
        return loader.construct_document(node)
    except ConfigError:
        raise
    except yaml.YAMLError as exc:
        raise ConfigError([f"YAML syntax error: {_one_line(exc)}"], source) from exc
    except RecursionError as exc:
        raise ConfigError(
            ["YAML document nested too deeply: a config is a few levels deep"], source
        ) from exc
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. !!timestamp 2001-13-45
        raise ConfigError([f"YAML value error: {_one_line(exc)}"], source) from exc
    finally:
        if loader is not None:
            loader.dispose()


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


class _Section(BaseModel):
    # allow_inf_nan=False: a NaN or infinite float (``optim.lr: .inf``) is never a setting,
    # only a typo or an overflow, and it would otherwise surface epochs later as a NaN loss
    model_config = ConfigDict(
        extra="forbid", strict=True, validate_default=True, allow_inf_nan=False
    )


class SeedsConfig(_Section):
    """Per-stream seeds; ``null`` derives the stream's seed from the top-level ``seed``."""

    init: int | None = None  #: weight and time-constant initialisation
    data_order: int | None = None  #: mini-batch order (a pure function of seed and epoch)
    augment: int | None = None  #: augmentations (a pure function of seed and epoch)
    split: int | None = None  #: random validation hold-out and sample subsets


class YinYangConfig(_Section):
    """Yin-Yang sizes, seeds (the reference sets by default) and latency encoding (ms)."""

    train_size: PositiveInt = 5000
    train_seed: int = 42
    valid_size: PositiveInt = 1000
    valid_seed: int = 41
    test_size: PositiveInt = 1000
    test_seed: int = 40
    t_min: NonNegativeFloat = 0.0
    t_max: NonNegativeFloat = 30.0
    t_bias: NonNegativeFloat = 0.0
    bias: bool = True


class RandmanConfig(_Section):
    """A generated random-manifold set, split into train/validation/test by fractions."""

    nb_classes: PositiveInt = 10
    nb_units: PositiveInt = 100
    nb_steps: PositiveInt = 100
    step_frac: PositiveFloat = 1.0
    dim_manifold: PositiveInt = 2
    nb_samples: PositiveInt = 1000  #: per class
    alpha: PositiveFloat = 2.0
    seed: int = 0
    valid_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0)


class DelayConfig(_Section):
    """Delay-line input: ``n_delays`` extra copies of every channel, ``delay_ms`` apart."""

    n_delays: int = Field(10, ge=0)
    delay_ms: NonNegativeFloat = 30.0


class ValidationConfig(_Section):
    """Where the per-epoch validation set comes from.

    ``official``: the dataset's own split (Yin-Yang, SSC, randman, ``valid_file``);
    ``split``: a seeded random (``stratified``) hold-out of ``fraction`` of the training set;
    ``speaker``: hold out one speaker of the training set (SHD's model selection);
    ``test``: the test set (flagged as such in the summary: no honest model selection);
    ``train``: the (unaugmented) training set itself (smoke tests); ``none``: no validation,
    the best checkpoint is then chosen on training accuracy.
    """

    kind: Literal["official", "split", "speaker", "test", "train", "none"] = "official"
    fraction: float = Field(0.1, gt=0.0, lt=1.0)
    stratified: bool = True
    speaker: int | None = None


class DataConfig(_Section):
    """Dataset, binning, validation split, augmentations and delay line."""

    dataset: Literal["yinyang", "shd", "ssc", "randman", "hdf5"] = "yinyang"
    directory: str | None = None  #: shd/ssc: folder of the official files (default: data dir)
    train_file: str | None = None  #: hdf5: SHD-format training file
    valid_file: str | None = None  #: hdf5: optional validation file
    test_file: str | None = None  #: hdf5: optional test file
    dt: PositiveFloat = 1.0  #: simulation step (ms)
    duration_ms: PositiveFloat | None = None  #: trial length; null: the dataset's default
    pool: PositiveInt = 1  #: merge this many adjacent input channels (shd/ssc/hdf5)
    cache: bool = True  #: cache binned shd/ssc/hdf5 data on disk
    validation: ValidationConfig = ValidationConfig()
    test: bool = True  #: evaluate the best checkpoint on the test set at the end
    augment: list[dict[str, Any]] = []  #: e.g. [{name: shift, max_shift: 40}, {name: blend, ...}]
    delay: DelayConfig | None = None
    max_train_samples: PositiveInt | None = None  #: seeded random subset (quick experiments)
    max_eval_samples: PositiveInt | None = None  #: same for validation and test sets
    yinyang: YinYangConfig = YinYangConfig()
    randman: RandmanConfig = RandmanConfig()

    @field_validator("augment")
    @classmethod
    def _check_augment(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from eventprop.data.augment import build_augmentations

        build_augmentations(value)  # raises ValueError naming the entry and parameter
        return value

    @model_validator(mode="after")
    def _check_combination(self) -> DataConfig:
        kind = self.validation.kind
        if self.dataset == "hdf5" and self.train_file is None:
            raise ValueError("data.train_file: required when data.dataset is 'hdf5'")
        if self.dataset != "hdf5":
            for key in ("train_file", "valid_file", "test_file"):
                if getattr(self, key) is not None:
                    raise ValueError(
                        f"data.{key}: only used with data.dataset 'hdf5', not {self.dataset!r}"
                    )
        if kind == "official" and self.dataset == "shd":
            raise ValueError(
                "data.validation.kind: SHD has no official validation set; use 'split' or 'speaker'"
            )
        if kind == "official" and self.dataset == "hdf5" and self.valid_file is None:
            raise ValueError(
                "data.validation.kind: 'official' needs data.valid_file for data.dataset 'hdf5'"
            )
        if kind == "speaker" and self.validation.speaker is None:
            raise ValueError("data.validation.speaker: required when validation.kind is 'speaker'")
        if kind == "test" and self.dataset == "hdf5" and self.test_file is None:
            raise ValueError("data.validation.kind: 'test' needs data.test_file")
        if self.delay is not None and self.delay.n_delays > 0:
            ratio = self.delay.delay_ms / self.dt
            if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio):
                raise ValueError(
                    f"data.delay.delay_ms: {self.delay.delay_ms} ms is not a whole number of "
                    f"steps of data.dt = {self.dt} ms"
                )
        if self.duration_ms is not None:
            ratio = self.duration_ms / self.dt
            if self.dataset != "yinyang" and abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio):
                raise ValueError(
                    f"data.duration_ms: {self.duration_ms} ms is not a whole number of steps "
                    f"of data.dt = {self.dt} ms"
                )
        return self


class TausConfig(_Section):
    """Time constants (ms); ``*_std`` > 0: heterogeneous (gamma-distributed per neuron)."""

    tau_m: PositiveFloat = 20.0
    tau_s: PositiveFloat = 5.0
    tau_m_std: NonNegativeFloat = 0.0
    tau_s_std: NonNegativeFloat = 0.0
    trainable: bool = False
    tau_m_min: PositiveFloat = 3.0
    tau_s_min: PositiveFloat = 1.0

    @model_validator(mode="after")
    def _bounds(self) -> TausConfig:
        if self.tau_m < self.tau_m_min or self.tau_s < self.tau_s_min:
            raise ValueError("tau_m/tau_s: below their lower bounds tau_m_min/tau_s_min")
        return self


class InitConfig(_Section):
    """Initial weights ~ Normal(mean, std) (defaults: Nowotny et al. on SHD)."""

    w_in_mean: float = 0.02  #: input -> first hidden layer
    w_in_std: NonNegativeFloat = 0.01
    w_fwd_mean: float = 0.02  #: hidden layer -> next hidden layer
    w_fwd_std: NonNegativeFloat = 0.01
    w_rec_mean: float = 0.0  #: recurrent
    w_rec_std: NonNegativeFloat = 0.02
    w_out_mean: float = 0.0  #: last hidden layer -> readout
    w_out_std: NonNegativeFloat = 0.3


class ModelConfig(_Section):
    """Network shape, neuron parameters, initialisation and engine settings."""

    hidden: list[PositiveInt] = [256]
    recurrent: bool = True
    self_connections: bool = True
    taus: TausConfig = TausConfig()
    readout_taus: TausConfig = TausConfig()
    init: InitConfig = InitConfig()
    theta: PositiveFloat = 1.0
    min_denominator: PositiveFloat = 1e-3
    backend: Literal["numba", "torch"] = "numba"
    #: "grid": every event on a step boundary (the paper's discretisation); "exact": spikes at
    #: their real times inside steps (exact gradients of the continuous model)
    timing: Literal["grid", "exact"] = "grid"
    #: exact timing: most spikes one sample may fire, per spiking neuron and step (1 = the
    #: grid's own limit); a runaway network stops with an error naming layer, sample and step
    exact_spike_limit: PositiveFloat = 1.0
    dtype: Literal["float32", "float64"] = "float32"


class LossConfig(_Section):
    """Readout loss; ``tau_0``, ``tau_1``, ``alpha`` are used by ``first_spike`` only."""

    name: Literal[
        "sum",
        "sum_weigh_exp",
        "sum_weigh_linear",
        "sum_weigh_sigmoid",
        "max",
        "avg_xentropy",
        "first_spike",
    ] = "sum_weigh_exp"
    tau_0: PositiveFloat = 0.5
    tau_1: PositiveFloat = 6.4
    alpha: NonNegativeFloat = 3e-3


class RegularizerConfig(_Section):
    """Hidden spike-count regulariser; strengths in the units of the paper's code."""

    enabled: bool = False
    nu_upper: NonNegativeFloat = 14.0
    lambda_upper: NonNegativeFloat = 2e-9
    lambda_lower: NonNegativeFloat = 2e-9
    per_trial: bool = True


class OptimConfig(_Section):
    """Optimiser (paper: Adam, lr 1e-3, betas 0.9/0.999, eps 1e-8)."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: PositiveFloat = 1e-3
    betas: list[float] = Field(default=[0.9, 0.999], min_length=2, max_length=2)
    eps: PositiveFloat = 1e-8
    weight_decay: NonNegativeFloat = 0.0
    momentum: NonNegativeFloat = 0.0  #: sgd only
    grad_clip: PositiveFloat | None = None  #: clip the global gradient norm

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: list[float]) -> list[float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise ValueError("each beta must lie in [0, 1)")
        return v


class ScheduleConfig(_Section):
    """Learning-rate schedule, stepped once per epoch.

    ``constant``; ``ema`` (the paper's: ``factor`` x lr when the ``fast`` EMA of validation
    accuracy drops to or below the ``slow`` one, at most once every ``min_epochs`` epochs and
    never before epoch ``min_epochs``); ``cosine`` (to ``min_lr`` at the last epoch);
    ``step`` (``factor`` x lr every ``every`` epochs).
    """

    kind: Literal["constant", "ema", "cosine", "step"] = "constant"
    fast: float = Field(0.8, gt=0.0, lt=1.0)
    slow: float = Field(0.85, gt=0.0, lt=1.0)
    factor: float = Field(0.5, gt=0.0, le=1.0)
    min_epochs: int = Field(50, ge=0)
    every: PositiveInt = 30
    min_lr: NonNegativeFloat = 0.0


class RewireConfig(_Section):
    """Lift the incoming feed-forward weights of hidden neurons that stayed silent."""

    enabled: bool = False
    lift: float = 0.002
    every: Literal["epoch", "batch"] = "epoch"


class TrainConfig(_Section):
    """Epochs, batching, rewiring, checkpoint selection, progress display."""

    epochs: PositiveInt = 100
    batch_size: PositiveInt = 32
    eval_batch_size: PositiveInt = 256
    drop_last: bool = False
    rewire: RewireConfig = RewireConfig()
    select_on: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    progress: bool = True


class RunConfig(_Section):
    """Where runs go and what they write."""

    root: str = "runs"  #: parent folder of new run directories
    tensorboard: bool | None = None  #: null: when the tensorboard package is installed
    plots: bool = True
    plot_every: int = Field(0, ge=0)  #: redraw the curves every N epochs (0: at the end)


class BPTTConfig(_Section):
    """Options of the surrogate-gradient baseline (``method: bptt`` only)."""

    surrogate_slope: PositiveFloat = 10.0  #: SuperSpike fast-sigmoid steepness
    detach_reset: bool = True  #: do not differentiate through the reset


class ExperimentConfig(_Section):
    """A complete, reproducible description of one training run."""

    name: str = "experiment"
    description: str = ""
    method: Literal["eventprop", "bptt"] = "eventprop"
    bptt: BPTTConfig = BPTTConfig()
    seed: int = 0
    seeds: SeedsConfig = SeedsConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    regularizer: RegularizerConfig = RegularizerConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    train: TrainConfig = TrainConfig()
    run: RunConfig = RunConfig()

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        if self.regularizer.enabled and not self.model.hidden:
            raise ValueError("regularizer.enabled: the model has no hidden layer to regularise")
        if self.train.rewire.enabled and not self.model.hidden:
            raise ValueError("train.rewire.enabled: the model has no hidden layer to rewire")
        if not math.isfinite(self.train.rewire.lift):
            raise ValueError("train.rewire.lift: must be a finite number")
        return self


# --------------------------------------------------------------------------------------------
# Error messages
# --------------------------------------------------------------------------------------------

_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "none_required": "null",
}


_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<top level>"


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The schema class that owns the key at ``loc`` (for listing the allowed keys)."""
    model: Any = ExperimentConfig
    for part in loc[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [ann, *args]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _loc_without_union_tags(loc: Sequence[Any]) -> list[Any]:
    # pydantic adds the union member to the location ("delay", "DelayConfig", "n_delays")
    return [p for p in loc if not (isinstance(p, str) and p[:1].isupper() and p.endswith("Config"))]


#: bounded repr of a bad value: a few items per level, a few levels (never the whole value)
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 6, 6, 6
_REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = _REPR.maxarray = 6
_REPR.maxstring, _REPR.maxlong, _REPR.maxother = 60, 40, 60


def _describe(value: Any) -> str:
    """``value`` for an error line: a bounded prefix of its repr (a config's value may be huge)."""
    text = _REPR.repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def format_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: ``dotted.path: what was expected, got what``."""
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors():
        loc = _loc_without_union_tags(err["loc"])
        path = _path(loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            owner = _model_at(loc)
            allowed = ", ".join(owner.model_fields) if owner else "?"
            line = f"{path}: unknown key (allowed here: {allowed})"
        elif kind == "missing":
            line = f"{path}: required key is missing"
        elif kind in _BOUNDS:
            ctx = err.get("ctx") or {}
            op, key = _BOUNDS[kind]
            line = (
                f"{path}: expected a value {op} {ctx.get(key)}, got {_describe(err.get('input'))}"
            )
        elif kind == "literal_error":
            expected = (err.get("ctx") or {}).get("expected", "")
            line = f"{path}: expected one of {expected}, got {_describe(err.get('input'))}"
        elif kind in ("too_short", "too_long"):
            ctx = err.get("ctx") or {}
            n = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
            bound = "at least" if kind == "too_short" else "at most"
            line = (
                f"{path}: expected a list of {bound} {n} items, got {_describe(err.get('input'))}"
            )
        elif kind in _EXPECTED:
            line = f"{path}: expected {_EXPECTED[kind]}, got {_describe(err.get('input'))}"
        elif kind == "value_error":
            msg = str(err["msg"]).removeprefix("Value error, ")
            # messages of cross-field checks already start with their full key path
            line = msg if not loc or msg.startswith(path + ".") else f"{path}: {msg}"
        else:
            line = f"{path}: {err['msg']}, got {_describe(err.get('input'))}"
        line = _one_line(line, 400)  # a validator's message may quote a long value
        key = (path, line)
        if key not in seen:  # unions report one error per member; keep distinct lines
            seen.add(key)
            problems.append(line)
    return problems


# --------------------------------------------------------------------------------------------
# Loading, merging, overrides
# --------------------------------------------------------------------------------------------

_CONFIG_PACKAGE = "eventprop.train"
_CONFIG_FOLDER = "configs"


def list_builtin_configs() -> list[str]:
    """Names of the configs shipped with the package."""
    folder = resources.files(_CONFIG_PACKAGE).joinpath(_CONFIG_FOLDER)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


#: built-in config names, for help texts
BUILTIN_CONFIGS: tuple[str, ...] = tuple(list_builtin_configs())


def builtin_config_path(name: str) -> Path:
    """Path of the built-in config ``name`` (inside the installed package)."""
    folder = resources.files(_CONFIG_PACKAGE).joinpath(_CONFIG_FOLDER)
    return Path(str(folder.joinpath(f"{name}.yaml")))


def resolve_config_source(spec: str | Path, relative_to: Path | None = None) -> Path:
    """A config argument -> file: an existing path, else a built-in name (``shd``)."""
    text = str(spec)
    candidates = [Path(text).expanduser()]
    if relative_to is not None and not Path(text).is_absolute():
        # ``extends: shd`` next to a shd.yaml means that file, then the built-in
        candidates[:0] = [relative_to / text, relative_to / f"{text}.yaml"]
    for cand in candidates:
        if cand.is_file():
            return cand
    name = Path(text).name.removesuffix(".yaml").removesuffix(".yml")
    if name in list_builtin_configs() and ("/" not in text or not Path(text).exists()):
        return builtin_config_path(name)
    raise ConfigError(
        [
            f"config: no file {text!r} and no built-in config of that name "
            f"(built-ins: {', '.join(list_builtin_configs())})"
        ]
    )


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: mappings merge, everything else (lists too) replaces."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _read_config_file(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a config file, following ``extends`` (cycles are an error)."""
    path = path.resolve()
    if path in chain:
        raise ConfigError([f"extends: cycle through {' -> '.join(str(p) for p in chain)}"])
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read config file: {exc}"], str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"not UTF-8 text (byte {exc.start}): a config is a YAML text file"], str(path)
        ) from exc
    raw = read_yaml(text, str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            [f"<top level>: expected a mapping (key: value), got {_describe(raw)}"], str(path)
        )
    raw = dict(raw)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError([f"extends: expected a string, got {_describe(parent)}"], str(path))
    base = _read_config_file(resolve_config_source(parent, path.parent), (*chain, path))
    return _merge(base, raw)


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """``"optim.lr=5e-4"`` -> ``(["optim", "lr"], 0.0005)``; values are YAML."""
    if "=" not in text:
        raise ConfigError([f"override {text!r}: expected KEY=VALUE (e.g. optim.lr=5e-4)"])
    key, _, value = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError([f"override {text!r}: empty key"])
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in key.split(".")]
    return parts, read_yaml(value, f"override {key}")


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Set each ``KEY=VALUE`` in a (nested) config dict; intermediate mappings are created."""
    out = _merge({}, raw)
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = out
        for depth, part in enumerate(parts[:-1]):
            nxt = node[part] if _has(node, part) else None
            if nxt is None:
                nxt = {}
            elif isinstance(nxt, Mapping):
                nxt = dict(nxt)
            elif isinstance(nxt, list):
                nxt = list(nxt)
            else:
                where = ".".join(map(str, parts[: depth + 1]))
                raise ConfigError([f"override {text!r}: {where} is not a mapping or list"])
            _set(node, part, nxt, text)
            node = nxt
        _set(node, parts[-1], value, text)
    return out


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, list):
        return isinstance(part, int) and part < len(node)
    return part in node or str(part) in node


def _set(node: Any, part: str | int, value: Any, text: str) -> None:
    if isinstance(node, list):
        if not isinstance(part, int) or part >= len(node):
            raise ConfigError([f"override {text!r}: index {part} is outside the list"])
        node[part] = value
    else:
        node[str(part)] = value


def validate_config(raw: Mapping[str, Any], source: str | None = None) -> ExperimentConfig:
    """Validate a merged config dict; raises :class:`ConfigError` with every problem."""
    try:
        return ExperimentConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc), source) from None


def load_config(
    source: str | Path | Mapping[str, Any] | None = None, overrides: Iterable[str] = ()
) -> ExperimentConfig:
    """Schema defaults <- a config (file, built-in name or dict; None: ``yinyang``) <- overrides."""
    if source is None:
        source = "yinyang"
    if isinstance(source, Mapping):
        raw, label = dict(source), "<dict>"
    else:
        path = resolve_config_source(source)
        raw, label = _read_config_file(path), str(path)
    overrides = list(overrides)
    if overrides:
        # on top of the defaults, so that ``data.augment.0.p=...`` finds the list it indexes
        raw = apply_overrides(_merge(ExperimentConfig().model_dump(mode="python"), raw), overrides)
        label += " + overrides"
    return validate_config(raw, label)


def dump_config(cfg: ExperimentConfig) -> str:
    """The complete config (every default filled in) as YAML, loadable by :func:`load_config`."""
    data = cfg.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
