"""Hyperparameters of the tree-model family, one pydantic model per member kind."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MemberKind = Literal["random_forest", "gradient_boosting", "xgboost", "lightgbm"]
EnsembleKind = Literal["random_forest", "gradient_boosting", "xgboost", "lightgbm", "stacked"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LightGBMParams(_Params):
    num_leaves: int = Field(15, ge=2, le=1024)
    learning_rate: float = Field(0.05, gt=0, le=1)
    n_estimators: int = Field(200, ge=1, le=10_000)
    min_child_samples: int = Field(40, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0)
    lambda_l1: float = Field(0.0, ge=0)
    lambda_l2: float = Field(1.0, ge=0)


class XGBoostParams(_Params):
    max_depth: int = Field(3, ge=1, le=16)
    learning_rate: float = Field(0.05, gt=0, le=1)
    n_estimators: int = Field(200, ge=1, le=10_000)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    min_child_weight: float = Field(5.0, ge=0)
    reg_lambda: float = Field(1.0, ge=0)


class RandomForestParams(_Params):
    n_estimators: int = Field(200, ge=1, le=5_000)
    max_depth: int | None = Field(8, ge=1)
    min_samples_leaf: int = Field(20, ge=1)
    max_features: float = Field(0.5, gt=0, le=1)


class GradientBoostingParams(_Params):
    max_iter: int = Field(200, ge=1, le=10_000)
    learning_rate: float = Field(0.05, gt=0, le=1)
    max_leaf_nodes: int = Field(15, ge=2)
    min_samples_leaf: int = Field(40, ge=1)
    l2_regularization: float = Field(1.0, ge=0)


MEMBER_PARAMS: dict[str, type[_Params]] = {
    "lightgbm": LightGBMParams,
    "xgboost": XGBoostParams,
    "random_forest": RandomForestParams,
    "gradient_boosting": GradientBoostingParams,
}


class EnsembleParams(_Params):
    """What to fit: one member kind, or several stacked by a logistic meta-learner."""

    kind: EnsembleKind = "lightgbm"
    """The member kind, or ``stacked``."""
    members: list[MemberKind] = Field(default_factory=lambda: ["lightgbm", "random_forest"])
    """Members of a stacked ensemble."""
    member_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Hyperparameters per member kind (defaults where missing)."""
    stack_folds: int = Field(3, ge=2, le=10)
    """Walk-forward folds producing the out-of-fold predictions the meta-learner fits on."""
    smote: bool = False
    """Oversample winners with SMOTE-NC before fitting members (binary rows are imbalanced)."""
    threads: int = Field(1, ge=1)
    """Threads per fit (a Tune trial's CPUs); with ``workers`` > 1, threads and CPUs per worker."""
    workers: int = Field(1, ge=1)
    """Ray Train workers for lightgbm/xgboost; more than 1 trains data-parallel on the connected
    Ray cluster."""

    def params_of(self, member: str) -> _Params:
        """Validated hyperparameters of ``member``."""
        return MEMBER_PARAMS[member].model_validate(self.member_params.get(member, {}))
