-- Redshift system function the adapter uses that stock PostgreSQL lacks, emulated per
-- scratch database. pg_get_late_binding_view_cols() reports the columns of late-binding views
-- (CREATE VIEW ... WITH NO SCHEMA BINDING), which have no rows in information_schema.columns.
-- On the peer a zero-column view stands in for such a view, and the test writes what Redshift
-- would report for it into zc_peer_late_binding_cols.
CREATE TABLE IF NOT EXISTS public.zc_peer_late_binding_cols (
    view_schema name, view_name name, col_name name, col_type varchar, col_num int
);
GRANT SELECT ON public.zc_peer_late_binding_cols TO PUBLIC;
CREATE OR REPLACE FUNCTION public.pg_get_late_binding_view_cols() RETURNS SETOF record
LANGUAGE sql STABLE AS $$
    SELECT view_schema, view_name, col_name, col_type, col_num FROM public.zc_peer_late_binding_cols
$$;
