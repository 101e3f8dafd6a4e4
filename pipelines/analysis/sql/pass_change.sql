-- Share of passed subjects in the term of first PPSS enrolment (term 1) and the next term (term 2),
-- per pupil, as the city's 2015 follow-up compared them. One row per pupil with both terms; with
-- $districts only pupils whose first PPSS enrolment was in those districts.
with firsts as (
    select pupil_key, start_date
    from programme_starts
    where programme = 'PPSS' and year(start_date) <= $year
        and ($districts::varchar[] is null or list_contains($districts::varchar[], district))
),

term_one as (
    select f.pupil_key, t.term_index
    from firsts as f
    inner join terms as t on f.start_date between t.term_start and t.term_end
)

select
    one.pupil_key,
    o1.gender,
    o1.share_passed as share_term_1,
    o2.share_passed as share_term_2
from term_one as one
inner join pupil_term_outcomes as o1 on o1.pupil_key = one.pupil_key and o1.term_index = one.term_index
inner join pupil_term_outcomes as o2 on o2.pupil_key = one.pupil_key and o2.term_index = one.term_index + 1
where o1.share_passed is not null and o2.share_passed is not null
