-- customer_ids_case_variants: Customer ids in the register that differ from another
--   one only by letter case, e.g. 'C-10' and 'c-10'. failing_rows counts the distinct
--   ids involved; each sample row is one group of variants, with two of its spellings.
--   An order's id that matches a customer only by case is an orphan
--   (orders_unknown_customer).
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   customer_id id: one spelling (the lowest)
--   other_id id: another spelling (the highest)
--   variants int: how many spellings the group has
-- notes: MySQL/MariaDB variant: spellings are told apart as bytes, because the usual
--   collations fold letter case (and then customer_ids_merged_by_database fails too).
with failing as (
    select
        lower(c.customer_id) as case_group,
        convert(min(cast(c.customer_id as binary)) using utf8mb4) as customer_id,
        convert(max(cast(c.customer_id as binary)) using utf8mb4) as other_id,
        count(distinct cast(c.customer_id as binary)) as variants
    from mapped_customers as c
    where c.customer_id is not null
    group by lower(c.customer_id)
    having count(distinct cast(c.customer_id as binary)) > 1
),

ranked as (
    select
        sum(variants) over () as failing_rows,
        row_number() over (order by case_group) as sample_rank,
        customer_id,
        other_id,
        variants
    from failing
)

select failing_rows, customer_id, other_id, variants
from ranked
where sample_rank <= :sample_rows
order by sample_rank
