"""Initial schema: events, markets, selections, results, odds, backtests, predictions, feedback.

On PostgreSQL with the timescaledb extension available, ``odds_snapshots`` becomes a hypertable
partitioned on ``captured_at``; everywhere else it stays a plain table.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 10:40:04.103586
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import betting.schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backtest_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("strategy_id", sa.String(length=120), nullable=False),
        sa.Column("strategy_name", sa.String(length=200), nullable=False),
        sa.Column("strategy_version", sa.String(length=40), nullable=False),
        sa.Column("period_start", betting.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", betting.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("initial_capital", sa.Float(), nullable=False),
        sa.Column("final_capital", sa.Float(), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "summary",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "risk_profile",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("exported_at", betting.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("imported_at", betting.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_runs")),
        sa.UniqueConstraint(
            "strategy_id",
            "strategy_version",
            "period_start",
            "period_end",
            name=op.f("uq_backtest_runs_strategy_id_strategy_version_period_start_period_end"),
        ),
    )
    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("sport", sa.String(length=20), nullable=False),
        sa.Column("competition", sa.String(length=60), nullable=False),
        sa.Column("season", sa.String(length=20), nullable=False),
        sa.Column("starts_at", betting.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("home", sa.String(length=120), nullable=True),
        sa.Column("away", sa.String(length=120), nullable=True),
        sa.Column("home_score", sa.Integer(), nullable=True),
        sa.Column("away_score", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("key", name=op.f("uq_events_key")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_sport_competition_starts_at"),
            ["sport", "competition", "starts_at"],
            unique=False,
        )

    op.create_table(
        "backtest_bets",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("placed_at", betting.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("event_ref", sa.String(length=200), nullable=False),
        sa.Column("market", sa.String(length=40), nullable=False),
        sa.Column("selection", sa.String(length=120), nullable=False),
        sa.Column("odds", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("expected_value", sa.Float(), nullable=False),
        sa.Column("stake", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("pnl", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["backtest_runs.id"],
            name=op.f("fk_backtest_bets_run_id_backtest_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_backtest_bets")),
    )
    op.create_table(
        "equity_points",
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", betting.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["backtest_runs.id"],
            name=op.f("fk_equity_points_run_id_backtest_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_equity_points")),
    )
    op.create_table(
        "markets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("line", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_markets_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_markets")),
        sa.UniqueConstraint("event_id", "key", name=op.f("uq_markets_event_id_key")),
    )
    op.create_table(
        "selections",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "market_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("participant", sa.String(length=120), nullable=True),
        sa.Column("true_probability", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_selections_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_selections")),
        sa.UniqueConstraint("market_id", "name", name=op.f("uq_selections_market_id_name")),
    )
    op.create_table(
        "odds_snapshots",
        sa.Column(
            "selection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("bookmaker", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("captured_at", betting.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["selection_id"],
            ["selections.id"],
            name=op.f("fk_odds_snapshots_selection_id_selections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "selection_id", "bookmaker", "kind", "captured_at", name=op.f("pk_odds_snapshots")
        ),
    )
    op.create_table(
        "predictions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("created_at", betting.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("model_name", sa.String(length=120), nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("event_ref", sa.String(length=200), nullable=False),
        sa.Column("market", sa.String(length=40), nullable=False),
        sa.Column("selection", sa.String(length=120), nullable=False),
        sa.Column(
            "selection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("odds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["selection_id"],
            ["selections.id"],
            name=op.f("fk_predictions_selection_id_selections"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_predictions_model_name_created_at"),
            ["model_name", "created_at"],
            unique=False,
        )

    op.create_table(
        "results",
        sa.Column(
            "market_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "winning_selection_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_results_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["winning_selection_id"],
            ["selections.id"],
            name=op.f("fk_results_winning_selection_id_selections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("market_id", name=op.f("pk_results")),
    )
    op.create_table(
        "feedback",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("created_at", betting.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=60), nullable=False),
        sa.Column(
            "prediction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "backtest_run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("event_ref", sa.String(length=200), nullable=True),
        sa.Column("selection", sa.String(length=120), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.Column("pnl", sa.Float(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["backtest_run_id"],
            ["backtest_runs.id"],
            name=op.f("fk_feedback_backtest_run_id_backtest_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_feedback_prediction_id_predictions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )

    make_odds_hypertable()


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("results")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_model_name_created_at"))

    op.drop_table("predictions")
    op.drop_table("odds_snapshots")
    op.drop_table("selections")
    op.drop_table("markets")
    op.drop_table("equity_points")
    op.drop_table("backtest_bets")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_sport_competition_starts_at"))

    op.drop_table("events")
    op.drop_table("backtest_runs")


def make_odds_hypertable() -> None:
    """Turn ``odds_snapshots`` into a TimescaleDB hypertable where the extension exists."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).scalar()
    if not available:
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    op.execute(
        "SELECT create_hypertable('odds_snapshots', 'captured_at', "
        "if_not_exists => TRUE, migrate_data => TRUE)"
    )
