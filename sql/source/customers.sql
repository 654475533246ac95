-- customers: The customer register (required): one row per customer, with the company's
--   own customer master mapped onto the canonical columns below.
--   This file is one SELECT in the source database's dialect (DuckDB SQL for a folder of
--   exports), without bind parameters. It may join, filter, convert units and recode
--   values; it must return exactly these columns, with these names (any order). Every
--   KPI query and data check reads it as mapped_customers; edit this file, never those.
-- columns:
--   customer_id id: the customer's key (integer or text, unique); the others refer to it
--   name text: display name (may be empty)
--   team text: the sales/service team that owns the customer; NULL shows up as "(no team)"
--   owner text: the account owner (sales rep)
--   region text: sales region
--   acquisition_channel text: where the customer came from
--   signup_date date: registration date (a date, not a timestamp: cast if needed)
--   birthday date: date of birth, NULL when unknown
--   referred_by id: the referring customer's customer_id, NULL when not referred
--   phone text: phone number
--   email text: e-mail address
--   marketing_opt_out bool: true when the customer refused marketing
-- notes: Identity mapping of the demo schema (table customers).
select
    c.customer_id as customer_id,
    c.name as name,
    c.team as team,
    c.owner as owner,
    c.region as region,
    c.acquisition_channel as acquisition_channel,
    c.signup_date as signup_date,
    c.birthday as birthday,
    c.referred_by as referred_by,
    c.phone as phone,
    c.email as email,
    c.marketing_opt_out as marketing_opt_out
from customers as c
