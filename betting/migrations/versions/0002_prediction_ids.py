"""Predictions: the id returned to the caller (shared by an answered market's rows) and the
bookmaker whose price the answer was judged at.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prediction_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("bookmaker", sa.String(length=80), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_predictions_prediction_id"), ["prediction_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_prediction_id"))
        batch_op.drop_column("bookmaker")
        batch_op.drop_column("prediction_id")
