-- leads_unknown_customer: Leads converted into a customer_id that is in no customers row
--   (leads not yet converted, customer_id NULL, are fine).
-- params:
--   sample_rows int: how many failing rows to return as examples
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   lead_id id: the lead's key
--   customer_id id: the customer it names
--   created_at timestamp: when the lead was created
with failing as (
    select
        l.lead_id as lead_id,
        l.customer_id as customer_id,
        l.created_at as created_at
    from mapped_leads as l
    where l.customer_id is not null
      and not exists (
          select 1 from mapped_customers as c where c.customer_id = l.customer_id
      )
),

ranked as (
    select
        count(*) over () as failing_rows,
        row_number() over (order by lead_id, created_at) as sample_rank,
        lead_id,
        customer_id,
        created_at
    from failing
)

select failing_rows, lead_id, customer_id, created_at
from ranked
where sample_rank <= :sample_rows
order by sample_rank
