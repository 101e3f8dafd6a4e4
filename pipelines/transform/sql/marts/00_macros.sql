-- Monday-Friday days from a to b inclusive. A record crossing a term boundary is split in
-- proportion to these school days (data contract 4); public holidays and breaks are not
-- known from the exports and are treated as school days.
create or replace macro school_days(a, b) as (
    case
        when b < a then 0
        else (datediff('day', a, b) + 1) // 7 * 5 + coalesce(list_sum([
            case when (isodow(a) - 1 + k) % 7 < 5 then 1 else 0 end
            for k in range(cast((datediff('day', a, b) + 1) % 7 as bigint))
        ]), 0)
    end
);

-- Meritvärde points (Skolverket, "Meritpoäng för gymnasiestudier"): A=20 ... E=10, F and '-' 0.
create or replace macro grade_points(g) as (
    cast(case g when 'A' then 20 when 'B' then 17.5 when 'C' then 15 when 'D' then 12.5 when 'E' then 10 else 0 end as double)
);
