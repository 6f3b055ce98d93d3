"""How the command line names a model: a built-in name, a spec string, ``FILE.py:FACTORY`` or a trained file.

``load_model`` is shared by ``convkit summary``, ``convkit symmetry``,
``convkit export`` and ``convkit explain output-size|receptive-field
--model``; ``convkit train`` and ``convkit evaluate`` build factories with
``from_factory``:

* a built-in name or a spec string: ``convkit.models.build``, sized before
  any weight is allocated (``max_parameters``);
* ``FILE.py:FACTORY``: the user's own file is run (their code runs: any
  error it raises is reported in one line) and ``FACTORY()`` is called. It
  is called with no arguments, except that a factory declaring a parameter
  ``num_classes`` gets the number of classes (when the command knows it:
  ``convkit train`` and trained files always, ``convkit summary`` with
  ``--num-classes``) and one declaring ``input_size`` gets one sample's
  shape ``(C, H, W)``, as ``convkit.models.build`` takes them. It must
  return a ``convkit.nn.Module``. The parameter budget does not apply: the
  factory's own code allocates the model;
* a ``.safetensors`` model or checkpoint written by ``convkit train``: the
  model it names, built for ``input_size`` and its classes, with its
  trained weights.

Loading a file never runs code it names. A model trained from a factory
records the path as it was given, the function's name and the SHA-256 of
the file's bytes (``Factory``), but the record only checks: the factory is
run only when the user names it too (``--factory FILE.py:FACTORY``, or
``factory=`` of ``load_model``; ``convkit train FILE.py:FACTORY --resume``),
and only when the named function is the recorded one and the named file
holds exactly the recorded bytes (``named_factory``, then ``from_factory``
with ``expected``). A crafted file naming some file on the machine thus
gets nothing run: it is refused in one line that says what to name.

Every failure is a ``ValueError`` whose message names the argument.
"""

from __future__ import annotations

import hashlib
import inspect
import shlex
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Factory", "FactoryChanged", "add_factory", "factory_reference", "from_factory", "load_model",
           "named_factory", "recorded_factory"]


def load_model(model: str, input_size: tuple[int, ...], num_classes: int | None, max_parameters: int, *,
               factory: str | None = None):
    """The model named by ``model`` (module docstring), for inputs of ``input_size`` ``(C, H, W)``.

    ``factory`` (``FILE.py:FACTORY``, the ``--factory`` option) is the
    factory a trained file ``model`` was built by, named by the caller: a
    file with a factory record loads only with it (``named_factory``), and
    ``factory`` is refused with any other ``model``.
    """
    if factory is not None and not model.endswith(".safetensors"):
        raise ValueError(f"--factory {factory}: names the factory a model file written by convkit train was "
                         f"trained from; MODEL {model!r} is not such a file (drop --factory)")
    if factory_reference(model) is not None:
        try:
            return from_factory(model, input_size, num_classes)[0]
        except ValueError as err:
            raise ValueError(f"MODEL {err}") from None
    if model.endswith(".safetensors"):
        return _trained(Path(model), input_size, max_parameters, factory)
    from ..models import build

    return build(model, input_size=input_size, num_classes=num_classes, max_parameters=max_parameters)


def factory_reference(model: str) -> tuple[str, str] | None:
    """``(path, function)`` when ``model`` is ``FILE.py:FACTORY`` (split at the last ``:``), else None."""
    path, sep, name = model.rpartition(":")
    return (path, name) if sep and path.endswith(".py") else None


@dataclass(frozen=True)
class Factory:
    """Where a model built by a user's factory came from; ``record()`` is what a trained file stores.

    Attributes:
        path (str): the file's path as given on the command line.
        function (str): the factory's name in the file.
        sha256 (str): SHA-256 of the file's bytes (64 hex digits), the bytes that were run.
    """

    path: str
    function: str
    sha256: str

    def record(self) -> dict:
        """The JSON object stored as ``config["factory"]``: ``path``, ``function``, ``sha256``."""
        return {"path": self.path, "function": self.function, "sha256": self.sha256}

    @property
    def reference(self) -> str:
        """``FILE.py:FACTORY``, as the command line names it."""
        return f"{self.path}:{self.function}"


class FactoryChanged(ValueError):
    """The file named as a trained model's factory does not hold the bytes the model was built from."""


MODEL_HELP = ("a built-in model (lenet5, convnet, vgg11 ... vgg19_bn, resnet18, resnet34, resnet20), a spec string "
              "such as 'conv3-10 pool2 flatten fc10', FILE.py:FACTORY (imports FILE.py, running its code, and calls "
              "FACTORY()), or a model.safetensors written by convkit train (its trained weights; one trained from "
              "FILE.py:FACTORY needs --factory)")
"""The help of a command's MODEL: the forms ``load_model`` takes."""


def add_factory(parser) -> None:
    """Add ``--factory FILE.py:FACTORY`` (``load_model``'s ``factory``) to a command's ``parser``."""
    parser.add_argument("--factory", metavar="FILE.py:FACTORY",
                        help="the factory a model file written by convkit train was trained from: loading a file "
                             "never runs code it names, so such a file loads only with its factory named here, "
                             "and only when the function is the one it records and FILE.py holds the bytes it "
                             "records (SHA-256)")


def named_factory(recorded: Factory, named: str | None, source, verb: str = "load",
                  name_it: Callable[[str], str] = lambda reference: shlex.join(["--factory", reference])) -> str:
    """``named``, the factory the user named for the trained file ``source``, checked against its ``recorded`` one.

    Nothing is read or run here: ``named`` must be given (a trained file's
    record is never run on its own) and name the recorded function;
    ``from_factory(named, ..., expected=recorded)`` then checks the bytes.
    ``name_it(FILE.py:FACTORY)`` is what the user adds to the command line
    to name one (default ``--factory FILE.py:FACTORY``); the messages say
    "to ``verb`` it, name it: ..." with the recorded factory filled in.
    """
    built_by = f"{source} was built by {recorded.reference} (a Python file, which loading does not run)"
    reference = named and factory_reference(named)
    if not reference:
        given = f", not by {named!r}" if named is not None else ""
        raise ValueError(f"{built_by}{given}; to {verb} it, name it: {name_it(recorded.reference)}")
    path, function = reference
    if function != recorded.function:
        raise ValueError(f"{source} was built by function {recorded.function}() ({recorded.reference}), but "
                         f"{named} names {function}(); to {verb} it, name it: {name_it(f'{path}:{recorded.function}')}")
    return named


def recorded_factory(config: dict, source: Path) -> Factory:
    """The ``factory`` record in the config of the trained file ``source``; ValueError naming the field if unusable."""
    record = config.get("factory")
    fields = ("path", "function", "sha256")
    if (not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in fields)
            or len(record["sha256"]) != 64):
        shown = repr(record) if len(repr(record)) <= 60 else repr(record)[:57] + "..."
        raise ValueError(f"{source} is corrupt: config field 'factory' is {shown}; expected the path, function "
                         "and SHA-256 of the factory the model was trained from")
    if f"{record['path']}:{record['function']}" != config.get("model"):
        raise ValueError(f"{source} is corrupt: config field 'factory' names {record['path']}:{record['function']}, "
                         f"field 'model' {config.get('model')!r}")
    return Factory(record["path"], record["function"], record["sha256"])


def from_factory(model: str, input_size: tuple[int, ...], num_classes: int | None,
                 expected: Factory | None = None):
    """``(module, Factory)``: the model ``FILE.py:FACTORY`` builds, and where it came from.

    The file's bytes are read once, hashed and run from memory (so what is
    recorded is what ran; no ``__pycache__`` is written beside it). With
    ``expected`` (a trained file's record, the factory already named by the
    user: ``named_factory``), a file whose SHA-256 differs raises
    ``FactoryChanged`` before anything is run; its message, naming both
    files and both hashes, follows "<trained file> was ". Other messages
    start with ``FILE.py:FACTORY: ``.
    """
    from ..nn import Module

    path, name = factory_reference(model)
    if not name.isidentifier():
        raise ValueError(f"{model}: after the ':' comes the name of a function in the file, got {name!r}")
    try:
        source = Path(path).read_bytes()
    except FileNotFoundError:
        where = ("; a relative path is taken from the current directory: run from the directory it was trained "
                 "in, or give the file's path") if expected is not None and not Path(path).is_absolute() else ""
        raise ValueError(f"{model}: no such file {path!r}{where}") from None
    except OSError as err:
        raise ValueError(f"{model}: cannot read {path!r}: {err.strerror or err}") from None
    factory = Factory(path, name, hashlib.sha256(source).hexdigest())
    if expected is not None and factory.sha256 != expected.sha256:
        raise FactoryChanged(f"built by {expected.reference} from a file with SHA-256 {expected.sha256[:12]}..., "
                             f"but {path} has SHA-256 {factory.sha256[:12]}... now; name the file it was built by "
                             "(or train the changed one as a new run)")
    build = _function(model, path, name, source, factory.sha256)
    try:
        net = build(**_arguments(build, input_size, num_classes))
    except Exception as err:  # the user's own code: report it in one line, whatever it raised
        raise ValueError(f"{model}: {name}() raised {_one_line(err)}") from None
    if not isinstance(net, Module):
        raise ValueError(f"{model}: {name}() returned {type(net).__name__}, not a convkit.nn.Module")
    return net, factory


def _function(model: str, path: str, name: str, source: bytes, sha256: str):
    """Function ``name`` of the file ``path`` (its bytes ``source``), run as a module named after its hash.

    The module is entered in ``sys.modules`` so that code that looks itself
    up there (dataclasses, for one) works as in an imported file.
    """
    module_name = f"convkit_factory_{sha256[:16]}"
    module = sys.modules.get(module_name)
    if module is None:
        module = types.ModuleType(module_name)
        module.__file__ = str(Path(path).resolve())
        sys.modules[module_name] = module
        try:
            exec(compile(source, path, "exec"), module.__dict__)
        except Exception as err:  # the user's own code, as above
            del sys.modules[module_name]
            raise ValueError(f"{model}: running {path} raised {_one_line(err)}") from None
    build = getattr(module, name, None)
    if not callable(build):
        raise ValueError(f"{model}: {path} defines no function {name}()")
    return build


def _one_line(err: BaseException) -> str:
    """``TypeName: message`` on one line (the message's line breaks and runs of spaces made single spaces)."""
    return " ".join(f"{type(err).__name__}: {err}".split())


def _arguments(build, input_size: tuple[int, ...], num_classes: int | None) -> dict:
    """The keyword arguments ``build`` declares among ``num_classes`` and ``input_size`` (module docstring)."""
    try:
        parameters = inspect.signature(build).parameters
    except (TypeError, ValueError):  # a callable without a signature Python can read: called bare
        return {}
    named = {k for k, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    offered = {"input_size": tuple(input_size), "num_classes": num_classes}
    return {k: v for k, v in offered.items() if k in named and v is not None}


def _trained(path: Path, input_size: tuple[int, ...], max_parameters: int, factory: str | None):
    """The model of a file written by ``convkit train``, with its weights (``factory``: ``load_model``)."""
    from ..models import build
    from ..train import load_checkpoint

    if not path.is_file():
        raise ValueError(f"MODEL {path}: no such file")
    checkpoint = load_checkpoint(path)
    spec, classes = checkpoint.config.get("model"), checkpoint.config.get("classes")
    if not isinstance(spec, str) or not isinstance(classes, list):
        raise ValueError(f"MODEL {path}: the file does not name its model and classes (config fields 'model' and "
                         f"'classes'); give a file written by convkit train")
    if factory_reference(spec) is not None:
        expected = recorded_factory(checkpoint.config, path)
        named = named_factory(expected, factory, f"MODEL {path}")
        try:
            net = from_factory(named, input_size, len(classes), expected)[0]
        except FactoryChanged as err:
            raise ValueError(f"MODEL {path} was {err}") from None
        except ValueError as err:
            raise ValueError(f"--factory {err}") from None
    elif factory is not None:
        raise ValueError(f"--factory {factory}: MODEL {path} was trained from {spec!r}, not from a factory "
                         "(drop --factory)")
    else:
        net = build(spec, input_size=input_size, num_classes=len(classes), max_parameters=max_parameters)
    checkpoint.restore(net)
    return net
