// \brief (being written)
