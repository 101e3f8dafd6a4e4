-- A PPSS term is a programme term, and terms are counted from the first PPSS enrolment only.
select o.pupil_key, o.term_index
from pupil_term_outcomes as o
where (o.in_ppss and not o.in_programme)
    or (o.terms_since_enrolment is not null
        and o.pupil_key not in (select pupil_key from programme_starts where programme = 'PPSS'))
