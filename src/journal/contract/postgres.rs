//! What only the PostgreSQL journal has to show: replicas appending the same delivery at once,
//! versioned migrations, a database that goes away and comes back.
