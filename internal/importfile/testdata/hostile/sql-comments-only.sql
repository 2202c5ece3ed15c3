-- nothing to see
/* still nothing */
