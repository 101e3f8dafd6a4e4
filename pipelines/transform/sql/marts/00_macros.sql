-- Monday-Friday days from 1 January 0001 (a Monday, before any date an export can hold: the count
-- is never negative, where DuckDB's // and % would round towards zero) up to the day before d.
create or replace macro weekdays_before(d) as (
    datediff('day', date '0001-01-01', d) // 7 * 5 + least(datediff('day', date '0001-01-01', d) % 7, 5)
);

-- Monday-Friday days from a to b inclusive. A record crossing a term boundary is split in
-- proportion to these school days (data contract 4); public holidays and breaks are not
-- known from the exports and are treated as school days.
-- Closed form: weekdays before a day, counted from Monday 1 January 0001, differenced (a list
-- of days per record cost a quarter of the attendance marts).
create or replace macro school_days(a, b) as (
    case
        when b < a then 0
        else weekdays_before(b + 1) - weekdays_before(a)
    end
);

-- Meritvärde points (Skolverket, "Meritpoäng för gymnasiestudier"): A=20 ... E=10, F and '-' 0.
create or replace macro grade_points(g) as (
    cast(case g when 'A' then 20 when 'B' then 17.5 when 'C' then 15 when 'D' then 12.5 when 'E' then 10 else 0 end as double)
);
