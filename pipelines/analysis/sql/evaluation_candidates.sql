-- Candidates for the matched comparisons (pupil-level, never shown). For every month in which
-- some pupil was first enrolled in PPSS (a cohort): the pupils enrolled that month, and every pupil
-- not yet enrolled then in the same term (estimands.py). For each: årskurs, school and gender
-- in the cohort month's term; the baseline path of monthly absence (the reported months among
-- the eight before the cohort month, latest first); share passed, meritvärde and absence in
-- the baseline term (the term before the cohort's) and the term before that. Outcomes, none
-- after the follow-up year: mean absence in months +3..+12, for a pupil enrolled later only
-- up to three months before its own enrolment (anticipation: pupils are often enrolled after
-- an absence peak); share passed in the term after the cohort's, for a pupil not enrolled by
-- its end; eligibility for yrkesprogram at the end of årskurs 9, likewise. Pupils of another
-- programme (SkolFam) are never comparisons. With $districts: the cohorts and enrolled pupils are
-- those whose first PPSS enrolment was in those districts; pupils enrolled elsewhere in the same month are
-- left out, and other pupils are comparisons as in the full report.
with firsts as (
    select
        pupil_key,
        start_month as own_month,
        start_term as own_term,
        ($districts::varchar[] is null or list_contains($districts::varchar[], district)) as in_subset
    from programme_starts
    where programme = 'PPSS' and start_date <= make_date($year, 12, 31)
),

cohorts as (
    select distinct
        own_month as cohort_month,
        ((own_month // 12) * 2 + case when own_month % 12 >= 6 then 1 else 0 end)::integer as cohort_term
    from firsts
    where in_subset
),

months as (
    select pupil_key, (year(month_start) * 12 + month(month_start) - 1)::integer as mi, absence_rate
    from pupil_month_attendance
    where absence_rate is not null and month_start <= make_date($year, 12, 31)
),

candidates as (
    select
        c.cohort_month,
        o.pupil_key,
        o.gender,
        o.school_year,
        o.school_unit_code,
        c.cohort_term,
        f.own_month,
        f.own_term,
        coalesce(f.own_month = c.cohort_month, false) as treated
    from cohorts as c
    inner join pupil_term_outcomes as o on o.term_index = c.cohort_term
    left join firsts as f using (pupil_key)
    where
        (f.own_month is null or f.own_month >= c.cohort_month) and o.gender is not null
        -- enrolled this month in another district: neither enrolled here nor a comparison
        and (f.own_month is distinct from c.cohort_month or f.in_subset)
        -- a pupil of another programme (SkolFam) has had a similar intervention: never a comparison
        and (
            coalesce(f.own_month = c.cohort_month, false)
            or o.pupil_key not in (
                select pupil_key from programme_starts
                where programme <> 'PPSS' and start_date <= make_date($year, 12, 31)
            )
        )
),

pre as (
    select
        k.cohort_month,
        k.pupil_key,
        m.absence_rate,
        row_number() over (partition by k.cohort_month, k.pupil_key order by m.mi desc) as recency
    from candidates as k
    inner join months as m
        on m.pupil_key = k.pupil_key and m.mi between k.cohort_month - {pre_months} and k.cohort_month - 1
),

pre_path as (
    select
        cohort_month,
        pupil_key,
        count(*) as n_pre,
        avg(absence_rate) as pre_mean,
        avg(absence_rate) filter (where recency = 1) as pre_1,
        avg(absence_rate) filter (where recency = 2) as pre_2,
        avg(absence_rate) filter (where recency in (3, 4)) as pre_34,
        avg(absence_rate) filter (where recency >= 5) as pre_5plus
    from pre
    group by all
),

post as (
    select k.cohort_month, k.pupil_key, avg(m.absence_rate) as post_mean, count(*) as n_post
    from candidates as k
    inner join months as m
        on m.pupil_key = k.pupil_key
        and m.mi between k.cohort_month + {outcome_first} and least(k.cohort_month + {outcome_last}, $year * 12 + 11)
        and (k.treated or k.own_month is null or m.mi < k.own_month - {anticipation})
    group by all
),

terms as (
    select * from pupil_term_outcomes where term_index <= $year * 2 + 1
),

finals as (
    select pupil_key, term_index as final_term, eligible_vocational
    from terms
    where term = 'VT' and school_year = 9 and eligible_vocational is not null
),

final as (
    select
        k.*,
        p.n_pre,
        p.pre_mean,
        p.pre_1,
        p.pre_2,
        p.pre_34,
        p.pre_5plus,
        b.share_passed as base_share_passed,
        b.merit_value_16 as base_merit,
        b.absence_rate as base_absence,
        b1.share_passed as prior_share_passed,
        b1.merit_value_16 as prior_merit,
        q.post_mean,
        coalesce(q.n_post, 0) as n_post,
        case when k.treated or k.own_term is null or k.own_term > k.cohort_term + 1
            then later.share_passed end as later_share_passed,
        case when k.treated or k.own_term is null or k.own_term > fin.final_term
            then fin.eligible_vocational::double end as eligible_vocational
    from candidates as k
    left join pre_path as p using (cohort_month, pupil_key)
    left join terms as b on b.pupil_key = k.pupil_key and b.term_index = k.cohort_term - 1
    left join terms as b1 on b1.pupil_key = k.pupil_key and b1.term_index = k.cohort_term - 2
    left join terms as later on later.pupil_key = k.pupil_key and later.term_index = k.cohort_term + 1
    left join finals as fin on fin.pupil_key = k.pupil_key and fin.final_term >= k.cohort_term
    left join post as q using (cohort_month, pupil_key)
)

select * from final
