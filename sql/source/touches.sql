-- touches: Campaign touches (optional): one row per message sent to a customer. Delete
--   this file (and campaigns.sql) when the company records no campaigns: the campaign
--   KPIs are then null.
--   This file is one SELECT in the source database's dialect (DuckDB SQL for a folder of
--   exports), without bind parameters. It may join, filter, convert units and recode
--   values (flags stored as 'Y'/'N': CASE ... THEN true ELSE false); it must return
--   exactly these columns, with these names (any order). Every KPI query and data check
--   reads it as mapped_touches; edit this file, never those.
-- columns:
--   touch_id id: the touch's key (integer or text, unique)
--   campaign_id id: the campaign_id in campaigns.sql
--   customer_id id: the customer_id in customers.sql
--   sent_at timestamp: when the message was sent (local time)
--   opened bool: whether the customer opened it
--   clicked bool: whether the customer clicked through
--   opted_out bool: whether the customer opted out of marketing in response
--   is_control bool: in the campaign's control group: selected, deliberately not sent
-- notes: Identity mapping of the demo schema (table touches). A company that keeps no
--   control groups returns false as is_control: its campaign results are then
--   attributed, not incremental.
select
    h.touch_id as touch_id,
    h.campaign_id as campaign_id,
    h.customer_id as customer_id,
    h.sent_at as sent_at,
    h.opened as opened,
    h.clicked as clicked,
    h.opted_out as opted_out,
    h.is_control as is_control
from touches as h
