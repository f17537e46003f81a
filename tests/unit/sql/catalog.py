"""The fixture warehouse's shape (schema ``marketing``) as a catalog for SQL-check tests."""

from __future__ import annotations

MARKETING: dict[str, dict[str, str]] = {
    "users": {
        "external_user_id": "VARCHAR",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "first_name": "VARCHAR",
        "country": "VARCHAR",
        "created_at": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
        "plan": "VARCHAR",
        "lifetime_value": "DOUBLE",
        "is_subscribed": "BOOLEAN",
        "attributes": "JSON",
    },
    "events": {
        "event_id": "VARCHAR",
        "external_user_id": "VARCHAR",
        "name": "VARCHAR",
        "occurred_at": "TIMESTAMP",
        "properties": "JSON",
    },
    "purchases": {
        "purchase_id": "VARCHAR",
        "external_user_id": "VARCHAR",
        "product_id": "VARCHAR",
        "currency": "VARCHAR",
        "price": "DOUBLE",
        "quantity": "INT",
        "purchased_at": "TIMESTAMP",
    },
    "subscriptions": {
        "external_user_id": "VARCHAR",
        "subscription_group": "VARCHAR",
        "state": "VARCHAR",
        "updated_at": "TIMESTAMP",
    },
    "accounts": {
        "account_id": "VARCHAR",
        "name": "VARCHAR",
        "plan": "VARCHAR",
        "created_at": "TIMESTAMP",
        "deleted": "BOOLEAN",
    },
    "users_attributes_sync": {
        "UPDATED_AT": "TIMESTAMP",
        "EXTERNAL_ID": "VARCHAR",
        "ALIAS_NAME": "VARCHAR",
        "ALIAS_LABEL": "VARCHAR",
        "BRAZE_ID": "VARCHAR",
        "EMAIL": "VARCHAR",
        "PHONE": "VARCHAR",
        "PAYLOAD": "JSON",
    },
}

CATALOG: dict[str, dict[str, dict[str, str]]] = {"marketing": MARKETING}
SCOPE = "marketing"

DIALECTS: tuple[str, ...] = (
    "snowflake",
    "bigquery",
    "redshift",
    "databricks",
    "duckdb",
    "postgres",
    "fabric",
)
