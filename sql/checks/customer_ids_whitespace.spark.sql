-- customer_ids_whitespace: Customer ids in the register that are empty or start or end
--   with whitespace (space, tab, line feed, carriage return, no-break space). An
--   order's id that matches no customer is an orphan (orders_unknown_customer) however
--   it looks.
-- params:
--   sample_rows int: how many failing rows to return as examples
--   tab text: the tab character
--   line_feed text: the line feed character
--   carriage_return text: the carriage return character
--   no_break_space text: the no-break space (U+00A0)
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   customer_id id: the id as stored
--   team text: the customer's team
-- notes: Spark SQL's variant: Spark casts to text only as `string` (a `varchar` cast needs
--   a length, which PostgreSQL would then cut ids to); the rest is the portable query.
with ids as (
    select
        cast(c.customer_id as string) as id_text,
        c.customer_id as customer_id,
        c.team as team
    from mapped_customers as c
    where c.customer_id is not null
),

failing as (
    select
        customer_id,
        team
    from ids
    where length(id_text) = 0
       or substr(id_text, 1, 1) in (' ', :tab, :line_feed, :carriage_return, :no_break_space)
       or substr(id_text, length(id_text), 1)
          in (' ', :tab, :line_feed, :carriage_return, :no_break_space)
),

ranked as (
    select
        count(*) over () as failing_rows,
        row_number() over (order by customer_id) as sample_rank,
        customer_id,
        team
    from failing
)

select failing_rows, customer_id, team
from ranked
where sample_rank <= :sample_rows
order by sample_rank
