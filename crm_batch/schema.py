"""The canonical data model (../shared/DESIGN.md) as SQLAlchemy Core metadata.

The demo database uses exactly this schema; a company's own database is mapped onto
the same columns by the sql/ files. Ids are opaque keys: :func:`build_metadata` makes
the tables with integer or text ids, and everything downstream treats ids as strings.

Conventions: ``*_date`` columns are calendar dates, ``*_at`` columns are naive
timestamps in the configured local timezone, money is in currency units.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.mysql import MEDIUMTEXT
from sqlalchemy.types import TypeEngine

MONEY = Numeric(14, 2)
#: Free text from people (names, notes): MySQL/MariaDB's TEXT holds only 64 KB, too little
#: for a 40,000-character Chinese name, so use MEDIUMTEXT (16 MB) there.
LONG_TEXT = Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb")

#: Canonical value sets (the demo generator and the validators use these).
ORDER_STATUSES = ("paid", "refunded", "cancelled")
TICKET_KINDS = ("complaint", "inquiry")
CAMPAIGN_CHANNELS = ("sms", "email", "wechat", "call", "event")
SOURCE_TABLES = ("customers", "leads", "orders", "tickets", "campaigns", "touches")
OUTPUT_TABLES = (
    "followups",
    "kpi_snapshots",
    "value_model_parameters",
    "batch_runs",
    "deliveries",
)
#: The fitted value-model figures stored per business date (crm_batch.app.value_models),
#: in the order of crm_batch.kpi.predict.ValueModel.parameters().
VALUE_MODEL_FIGURES = (
    "buyers",
    "repeat_buyers",
    "r",
    "alpha",
    "a",
    "b",
    "bgnbd_log_likelihood",
    "p",
    "q",
    "v",
    "gamma_gamma_customers",
    "gamma_gamma_log_likelihood",
)


def build_metadata(id_type: TypeEngine | type[TypeEngine] = BigInteger) -> MetaData:
    """All canonical tables; ``id_type`` is the type of every business key.

    Indexes are declared here but the demo loader creates them after the bulk load,
    which is several times faster than loading into indexed tables.
    """
    md = MetaData()

    def key(name: str, **kwargs: object) -> Column:
        return Column(name, id_type() if isinstance(id_type, type) else id_type, **kwargs)

    Table(
        "customers",
        md,
        key("customer_id", primary_key=True, autoincrement=False),
        Column("name", LONG_TEXT),
        Column("team", String(64)),
        Column("owner", String(64)),
        Column("region", String(64)),
        Column("acquisition_channel", String(32)),
        Column("signup_date", Date),
        Column("birthday", Date),
        key("referred_by", nullable=True),
        Column("phone", String(32)),
        Column("email", String(254)),
        Column("marketing_opt_out", Boolean, nullable=False, default=False),
        Index("ix_customers_team", "team"),
        Index("ix_customers_referred_by", "referred_by"),
    )
    Table(
        "leads",
        md,
        key("lead_id", primary_key=True, autoincrement=False),
        Column("created_at", DateTime, nullable=False),
        Column("source", String(32)),
        Column("team", String(64)),
        key("customer_id", nullable=True),
        Index("ix_leads_created_at", "created_at"),
    )
    Table(
        "orders",
        md,
        key("order_id", primary_key=True, autoincrement=False),
        key("customer_id", nullable=False),
        Column("order_date", Date, nullable=False),
        Column("amount", MONEY, nullable=False),
        Column("status", String(16), nullable=False),
        Column("channel", String(32)),
        Column("category", String(64)),
        # covering index: per-customer aggregation reads only the index on SQLite
        Index("ix_orders_customer_cover", "customer_id", "order_date", "status", "amount"),
        Index("ix_orders_order_date", "order_date"),
    )
    Table(
        "tickets",
        md,
        key("ticket_id", primary_key=True, autoincrement=False),
        key("customer_id", nullable=False),
        Column("opened_at", DateTime, nullable=False),
        Column("resolved_at", DateTime, nullable=True),
        Column("kind", String(16), nullable=False),
        Column("satisfaction", Integer, nullable=True),
        Index("ix_tickets_customer", "customer_id"),
    )
    Table(
        "campaigns",
        md,
        key("campaign_id", primary_key=True, autoincrement=False),
        Column("name", LONG_TEXT),
        Column("channel", String(16), nullable=False),
        Column("cost", MONEY, nullable=False),
        Column("started_at", DateTime, nullable=False),
    )
    Table(
        "touches",
        md,
        key("touch_id", primary_key=True, autoincrement=False),
        key("campaign_id", nullable=False),
        key("customer_id", nullable=False),
        Column("sent_at", DateTime, nullable=False),
        Column("opened", Boolean, nullable=False, default=False),
        Column("clicked", Boolean, nullable=False, default=False),
        Column("opted_out", Boolean, nullable=False, default=False),
        # selected for the campaign but deliberately not sent: the control group
        Column("is_control", Boolean, nullable=False, default=False),
        Index("ix_touches_customer", "customer_id", "sent_at"),
        Index("ix_touches_campaign", "campaign_id"),
    )
    Table(
        "followups",
        md,
        Column("followup_id", String(64), primary_key=True),
        # text whatever the source's key type: crm-batch handles ids as opaque strings,
        # and this table lives in databases whose customer keys may be either
        Column("customer_id", String(64), nullable=False),
        Column("entered_at", DateTime, nullable=False),
        Column("entered_by", String(128)),
        Column("outcome", String(64)),
        Column("note", LONG_TEXT),
        Column("next_contact_date", Date),
        Column("source_workbook", String(255)),
    )
    Table(
        "kpi_snapshots",
        md,
        Column("as_of", Date, nullable=False),
        Column("scope", String(8), nullable=False),  # 'all' | 'team' | 'noteam'
        Column("team", String(64), nullable=False),  # '' when scope = 'all'
        Column("kpi", String(64), nullable=False),
        Column("value", Double, nullable=True),  # 8-byte: FLOAT is 4 on DuckDB/MariaDB
        Column("computed_at", DateTime, nullable=False),
        PrimaryKeyConstraint("as_of", "scope", "team", "kpi"),
    )
    Table(
        "value_model_parameters",  # the company's BG/NBD and Gamma-Gamma fit per date
        md,
        Column("as_of", Date, primary_key=True),
        # 8-byte floats (FLOAT is 4 on DuckDB/MariaDB); NULL for a model not fitted
        *(Column(name, Double, nullable=True) for name in VALUE_MODEL_FIGURES),
        Column("computed_at", DateTime, nullable=False),
    )
    Table(
        "batch_runs",
        md,
        Column("run_id", String(36), nullable=False),
        Column("stage", String(32), nullable=False),  # 'run' for the whole run
        Column("business_date", Date, nullable=False),
        Column("kind", String(16), nullable=False),  # nightly | quarterly | demo | ...
        Column("status", String(16), nullable=False),  # running | ok | failed
        Column("started_at", DateTime, nullable=False),
        Column("finished_at", DateTime, nullable=True),
        Column("rows", BigInteger, nullable=True),
        Column("error", LONG_TEXT, nullable=True),
        Column("host", String(255), nullable=True),
        Column("pid", Integer, nullable=True),
        PrimaryKeyConstraint("run_id", "stage"),
    )
    Table(
        "deliveries",  # the e-mail sent-ledger (crm_batch.app.ledger)
        md,
        Column("message_id", String(320), primary_key=True),
        Column("recipient", String(254), nullable=False),
        Column("report_kind", String(16), nullable=False),
        Column("team", String(64), nullable=False),  # '' for the company-wide report
        Column("period", String(16), nullable=False),
        Column("language", String(8), nullable=False),
        Column("report_path", String(1024), nullable=False),
        Column("pdf_sha256", String(64), nullable=False),
        # digest of the data the report shows (email.only_if_changed); added in place
        # to older tables by crm_batch.app.ledger
        Column("content_sha256", String(64), nullable=True),
        Column("status", String(16), nullable=False),  # sending | sent | failed
        Column("attempts", Integer, nullable=False),
        Column("updated_at", DateTime, nullable=False),  # naive local time
        Column("sent_at", DateTime, nullable=True),
        Column("error", LONG_TEXT, nullable=True),
    )
    return md
