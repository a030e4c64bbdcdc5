"""Shared behaviour of synthfilter's estimators (scikit-learn's parameter contract)."""

from __future__ import annotations

import inspect
from typing import Any

from synthfilter.errors import ConfigError


class ParamsMixin:
    """``get_params``/``set_params`` read from the constructor's signature.

    As in scikit-learn, ``__init__`` stores each keyword argument under its
    own name and does nothing else, so ``sklearn.base.clone`` works.
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as scikit-learn's ``get_params``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Any:
        """Set constructor parameters, as scikit-learn's ``set_params``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ConfigError(f"{type(self).__name__} has no parameter '{name}'")
            setattr(self, name, value)
        return self
