print("magritte")
