def seed_demo():
    pass
