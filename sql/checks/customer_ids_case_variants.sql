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
-- notes: Integer ids never fail. MySQL/MariaDB run the .mysql.sql variant, Spark the
--   .spark.sql one.
with ids as (
    select cast(c.customer_id as varchar) as id_text
    from mapped_customers as c
    where c.customer_id is not null
),

case_groups as (
    -- a group with two spellings has a lowest and a highest one that differ: no
    -- count(distinct) over every group, only over the failing ones below
    select
        lower(id_text) as case_group,
        min(id_text) as customer_id,
        max(id_text) as other_id
    from ids
    group by lower(id_text)
    having min(id_text) <> max(id_text)
),

failing as (
    select
        g.case_group as case_group,
        g.customer_id as customer_id,
        g.other_id as other_id,
        count(distinct i.id_text) as variants
    from case_groups as g
    inner join ids as i on lower(i.id_text) = g.case_group
    group by g.case_group, g.customer_id, g.other_id
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
