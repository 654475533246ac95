-- customers_team_not_normal: Customers whose team is empty, padded with whitespace, holds
--   a line break, a tab or repeated spaces, or is longer than 64 characters: names stored
--   in another form than the one the suite uses, or that cannot be a scope. NULL (no
--   team) is fine: those customers form the (unassigned) scope.
-- params:
--   sample_rows int: how many failing rows to return as examples
--   tab text: the tab character
--   line_feed text: the line feed character
--   carriage_return text: the carriage return character
-- columns:
--   failing_rows int: how many rows fail the check (the same on every returned row)
--   customer_id id: the customer's key
--   team text: the team as stored
-- notes: MySQL/MariaDB variant: char_length counts characters, and lengths are compared
--   instead of texts (PAD SPACE collations ignore trailing spaces).
with failing as (
    select
        c.customer_id as customer_id,
        c.team as team
    from mapped_customers as c
    where c.team is not null
      and (
          char_length(c.team) = 0
          or char_length(trim(c.team)) <> char_length(c.team)
          or char_length(replace(c.team, :tab, '')) <> char_length(c.team)
          or char_length(replace(c.team, :line_feed, '')) <> char_length(c.team)
          or char_length(replace(c.team, :carriage_return, '')) <> char_length(c.team)
          or char_length(replace(c.team, '  ', ' ')) <> char_length(c.team)
          or char_length(c.team) > 64
      )
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
