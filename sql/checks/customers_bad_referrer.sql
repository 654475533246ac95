-- customers_bad_referrer: Customers whose referred_by names themselves or a customer id
--   that is in no customers row.
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   customer_id id: the referred customer's key
--   referred_by id: the referrer it names
--   problem text: 'self' (names itself) or 'unknown' (no such customer)
with failing as (
    select
        c.customer_id as customer_id,
        c.referred_by as referred_by,
        'self' as problem
    from mapped_customers as c
    where c.referred_by = c.customer_id
    union all
    select
        c.customer_id as customer_id,
        c.referred_by as referred_by,
        'unknown' as problem
    from mapped_customers as c
    where c.referred_by is not null
      and not exists (
          select 1 from mapped_customers as r where r.customer_id = c.referred_by
      )
),

ranked as (
    select
        count(*) over () as failing_rows,
        row_number() over (order by customer_id, referred_by) as sample_rank,
        customer_id,
        referred_by,
        problem
    from failing
)

select failing_rows, customer_id, referred_by, problem
from ranked
where sample_rank <= :sample_rows
order by sample_rank
