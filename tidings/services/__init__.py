"""Services: the rules of the product. Edges (api/, realtime/) call them; they call the store."""
