-- customer_ids_merged_by_database: Customer ids (in customers or orders) that the
--   database itself compares as equal although they differ, by letter case or trailing
--   spaces (a case-insensitive or space-padding collation), so its joins and GROUP BYs
--   would merge customers that crm-batch keeps apart. One row per merged key, with the
--   lowest and highest of its spellings (as bytes).
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   customer_id id: one spelling of the key
--   other_id id: another spelling the database treats as the same key
-- notes: MySQL/MariaDB: groups the ids with the column's own collation and compares the
--   bytes of the lowest and highest spelling in each group; a binary collation
--   (utf8mb4_nopad_bin, utf8mb4_0900_bin) or integer ids never fail.
with customer_keys as (
    select
        c.customer_id as id_value,
        min(cast(c.customer_id as binary)) as lowest,
        max(cast(c.customer_id as binary)) as highest
    from mapped_customers as c
    where c.customer_id is not null
    group by c.customer_id
),

order_keys as (
    select
        o.customer_id as id_value,
        min(cast(o.customer_id as binary)) as lowest,
        max(cast(o.customer_id as binary)) as highest
    from mapped_orders as o
    where o.customer_id is not null
    group by o.customer_id
),

keyed as (
    select id_value, lowest, highest from customer_keys
    union all
    select id_value, lowest, highest from order_keys
),

failing as (
    select
        convert(min(k.lowest) using utf8mb4) as customer_id,
        convert(max(k.highest) using utf8mb4) as other_id
    from keyed as k
    group by k.id_value
    having min(k.lowest) <> max(k.highest)
),

ranked as (
    select
        count(*) over () as failing_rows,
        row_number() over (order by customer_id) as sample_rank,
        customer_id,
        other_id
    from failing
)

select failing_rows, customer_id, other_id
from ranked
where sample_rank <= :sample_rows
order by sample_rank
