-- customers_missing_signup: Customers without a signup date (no day's register holds
--   them, since the register is the customers signed up on or before T).
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   customer_id id: the customer's key
--   team text: the customer's team
with failing as (
    select
        c.customer_id as customer_id,
        c.team as team
    from mapped_customers as c
    where c.signup_date is null
),

ranked as (
    select
        count(*) over () as failing_rows,
        row_number() over (order by customer_id, team) as sample_rank,
        customer_id,
        team
    from failing
)

select failing_rows, customer_id, team
from ranked
where sample_rank <= :sample_rows
order by sample_rank
