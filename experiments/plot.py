# plot (being written)
